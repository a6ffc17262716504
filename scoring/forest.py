"""A LightGBM booster's trees packed for the compiled walk of ``scoring.paths``: split nodes as
rows of two arrays, leaves apart, LightGBM's decision rule per split folded into flags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# a split node's flags (``Forest.node_int[:, FLAGS]``)
NAN_LEFT = 1  # a missing value (NaN) goes left
ZERO_MISSING = 2  # LightGBM's "Zero" missing type: NaN and |value| <= 1e-35 take the default side
CATEGORICAL = 4  # a category-set split: left when the value's code is in the set
_ZERO = 1e-35  # LightGBM's kZeroThreshold
# columns of ``node_int`` and ``node_float``: a child code >= 0 is a split node, < 0 is ~leaf
FEATURE, LEFT, RIGHT, FLAGS, CAT_START, CAT_END = range(6)
THRESHOLD, DELTA_LEFT, DELTA_RIGHT = range(3)


@dataclass(frozen=True)
class Forest:
    """A booster's trees packed for the walk: every split node of the forest is one row of
    ``node_int`` (feature, left, right, flags, category range) and of ``node_float`` (threshold,
    and the change of the expected output to the left and the right child: the contribution the
    split credits to its feature); leaves are only their values. Nodes are numbered tree by tree,
    depth first, a node's left child next to it; a child code >= 0 is a split node, < 0 the leaf
    ``~code``. A tree's root may be a leaf (a tree without splits)."""

    roots: np.ndarray  # int32 per tree: the root's code
    root_value: np.ndarray  # per tree: the root's expected output (the bias is their sum)
    leaf_value: np.ndarray
    node_int: np.ndarray  # (splits, 6) int32
    node_float: np.ndarray  # (splits, 3) float64
    cat_values: np.ndarray  # int64: the category sets, ``node_int[:, CAT_START:CAT_END]``

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """In the order the compiled functions take them."""
        return (self.roots, self.root_value, self.leaf_value, self.node_int, self.node_float,
                self.cat_values)

    @classmethod
    def of(cls, dump: dict) -> Forest:
        """From ``Booster.dump_model()``: LightGBM's decision rule per split (numerical ``<=``
        with its missing-value type, or a category set) folded into the flags."""
        trees = max(1, len(dump["tree_info"])) if dump.get("average_output") else 1
        ints: list[list[int]] = []
        floats: list[list[float]] = []
        leaves: list[float] = []
        cats: list[int] = []

        def value(node: dict) -> float:  # random-forest mode: the probability is sigmoid(mean)
            v = node["internal_value"] if "split_feature" in node else node.get("leaf_value", 0.0)
            return float(v) / trees if trees > 1 else float(v)

        def add(node: dict) -> int:
            if "split_feature" not in node:
                if node.get("leaf_coeff"):
                    raise ValueError("path contributions do not support linear trees")
                leaves.append(value(node))
                return ~(len(leaves) - 1)
            i = len(ints)
            ints.append([int(node["split_feature"]), 0, 0, 0, 0, 0])
            floats.append([0.0, 0.0, 0.0])
            if node["decision_type"] == "==":
                ints[i][FLAGS] = CATEGORICAL
                ints[i][CAT_START] = len(cats)
                cats.extend(int(c) for c in str(node["threshold"]).split("||") if c != "")
                ints[i][CAT_END] = len(cats)
            else:
                threshold = float(node["threshold"])
                floats[i][THRESHOLD] = threshold
                missing = node["missing_type"]
                if missing == "None":  # a missing value is read as 0.0
                    ints[i][FLAGS] = NAN_LEFT if 0.0 <= threshold else 0
                elif missing == "NaN":
                    ints[i][FLAGS] = NAN_LEFT if node["default_left"] else 0
                else:  # "Zero"
                    ints[i][FLAGS] = ZERO_MISSING | (NAN_LEFT if node["default_left"] else 0)
            here = value(node)
            for side, delta, child in ((LEFT, DELTA_LEFT, node["left_child"]),
                                       (RIGHT, DELTA_RIGHT, node["right_child"])):
                ints[i][side] = add(child)
                floats[i][delta] = value(child) - here
            return i

        roots, root_value = [], []
        for tree in dump["tree_info"]:
            roots.append(add(tree["tree_structure"]))
            root_value.append(value(tree["tree_structure"]))
        return cls(np.asarray(roots, dtype=np.int32), np.asarray(root_value, dtype=np.float64),
                   np.asarray(leaves, dtype=np.float64),
                   np.asarray(ints, dtype=np.int32).reshape(-1, 6),
                   np.asarray(floats, dtype=np.float64).reshape(-1, 3),
                   np.asarray(cats, dtype=np.int64))

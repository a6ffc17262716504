"""Fast per-feature contributions: the decision-path attribution of a LightGBM booster.

Exact TreeSHAP (``Booster.predict(pred_contrib=True)``) costs O(trees x leaves x depth^2) per row:
on the churn model it is about 130 times slower than a plain prediction, which made reasons the
whole cost of serving and of batch scoring. The path attribution (Saabas; "treeinterpreter") walks
each tree once, the way a prediction does, and credits every split's feature with the change in
the node's expected output from the node to the child taken:

    raw score = bias + sum over features of contribution[feature]

exactly as with SHAP (``bias`` = sum of the trees' root values). It is O(trees x depth) per row, the
cost of a prediction. The ranking of the top features agrees with TreeSHAP for most customers
(``make bench-batch`` reports the agreement on the benchmark model); it is not SHAP, and the choice
is a setting (``reasons_method``): ``path`` (default) or ``shap``.

The walk re-implements LightGBM's decision rule (numerical ``<=`` threshold with its missing-value
types, categorical splits by category set) from ``Booster.dump_model()``; the tests check that the
raw score it produces equals ``Booster.predict(raw_score=True)``.
"""

from __future__ import annotations

import logging
import math

import lightgbm as lgb
import numba
import numpy as np

log = logging.getLogger(__name__)

MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
_ZERO = 1e-35  # LightGBM's kZeroThreshold


@numba.njit(cache=True, nogil=True)
def _walk_row(x, out, roots, feature, threshold, left, right, default_left, missing, is_cat,
              cat_start, cat_end, cat_values, value):
    """Adds one row's path contributions to ``out`` (length features + 1; last = bias) and returns
    the raw score."""
    raw = 0.0
    for t in range(roots.shape[0]):
        node = roots[t]
        out[-1] += value[node]
        while feature[node] >= 0:
            f = feature[node]
            v = x[f]
            if is_cat[node]:
                go_left = False
                if not math.isnan(v) and v >= 0:
                    code = int(v)
                    for k in range(cat_start[node], cat_end[node]):
                        if cat_values[k] == code:
                            go_left = True
                            break
            else:
                m = missing[node]
                if math.isnan(v) and m != MISSING_NAN:
                    v = 0.0
                if (m == MISSING_ZERO and abs(v) <= _ZERO) or (m == MISSING_NAN and math.isnan(v)):
                    go_left = default_left[node]
                else:
                    go_left = v <= threshold[node]
            child = left[node] if go_left else right[node]
            out[f] += value[child] - value[node]
            node = child
        raw += value[node]
    return raw


@numba.njit(cache=True, nogil=True, parallel=True)
def _walk_parallel(x, out, raw, roots, feature, threshold, left, right, default_left, missing,
                   is_cat, cat_start, cat_end, cat_values, value):
    for i in numba.prange(x.shape[0]):
        raw[i] = _walk_row(x[i], out[i], roots, feature, threshold, left, right, default_left,
                           missing, is_cat, cat_start, cat_end, cat_values, value)


@numba.njit(cache=True, nogil=True)
def _walk_serial(x, out, raw, roots, feature, threshold, left, right, default_left, missing,
                 is_cat, cat_start, cat_end, cat_values, value):
    for i in range(x.shape[0]):
        raw[i] = _walk_row(x[i], out[i], roots, feature, threshold, left, right, default_left,
                           missing, is_cat, cat_start, cat_end, cat_values, value)


@numba.njit(cache=True, nogil=True)
def _top_row(buf, width, k, order, top):
    """The ``k`` largest positive values of ``buf[:width]``, largest first, ties by column order
    (as a stable sort); ``order`` stays -1 past the last one."""
    count = 0
    for f in range(width):
        v = buf[f]
        if not v > 0:
            continue
        pos = count
        while pos > 0 and top[pos - 1] < v:
            pos -= 1
        if pos >= k:
            continue
        for q in range(min(count, k - 1), pos, -1):
            order[q] = order[q - 1]
            top[q] = top[q - 1]
        order[pos] = f
        top[pos] = v
        count = min(count + 1, k)


@numba.njit(cache=True, nogil=True)
def _walk_top_rows(lo, hi, x, linear, tree_scale, linear_scale, k, raw, order, top, roots,
                   feature, threshold, left, right, default_left, missing, is_cat, cat_start,
                   cat_end, cat_values, value):
    buf = np.empty(x.shape[1] + 1)
    blend = linear.shape[0] > 0
    for i in range(lo, hi):
        buf[:] = 0.0
        r = _walk_row(x[i], buf, roots, feature, threshold, left, right, default_left, missing,
                      is_cat, cat_start, cat_end, cat_values, value)
        if blend:  # the blended contributions, and the margin as their sum
            r = 0.0
            for f in range(buf.shape[0]):
                buf[f] = tree_scale * buf[f] + linear_scale * linear[i, f]
                r += buf[f]
        raw[i] = r
        _top_row(buf, x.shape[1], k, order[i], top[i])


@numba.njit(cache=True, nogil=True, parallel=True)
def _walk_top_parallel(blocks, x, linear, tree_scale, linear_scale, k, raw, order, top, roots,
                       feature, threshold, left, right, default_left, missing, is_cat, cat_start,
                       cat_end, cat_values, value):
    n = x.shape[0]
    size = (n + blocks - 1) // blocks
    for b in numba.prange(blocks):
        _walk_top_rows(b * size, min(n, (b + 1) * size), x, linear, tree_scale, linear_scale, k,
                       raw, order, top, roots, feature, threshold, left, right, default_left,
                       missing, is_cat, cat_start, cat_end, cat_values, value)


@numba.njit(cache=True, nogil=True, parallel=True)
def _top_positive(contrib, k, order, top):
    for i in numba.prange(contrib.shape[0]):
        _top_row(contrib[i], contrib.shape[1], k, order[i], top[i])


def top_positive(contributions: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest positive values, largest first, ties by column
    order (as a stable sort), padded with -1; one compiled pass over the rows."""
    out = np.full((len(contributions), max(k, 0)), -1, dtype=np.int64)
    if k > 0 and len(contributions):
        top = np.zeros(out.shape)
        _top_positive(np.ascontiguousarray(contributions, dtype=np.float64), k, out, top)
    return out


def _rows_or_columns(x: np.ndarray) -> np.ndarray:
    """``x`` as float64, row-major or column-major as it comes (the batch job's matrices are
    column-major: built column by column, and walked a block of rows at a time, a column-major
    block stays in cache), copied only when it is neither."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.flags.c_contiguous or x.flags.f_contiguous else np.ascontiguousarray(x)


def _binary_sigmoid(objective: str) -> float | None:
    """The sigmoid factor of a binary objective ("binary sigmoid:1"), else None."""
    if not objective.startswith("binary"):
        return None
    for part in objective.split():
        if part.startswith("sigmoid:"):
            return float(part.split(":", 1)[1])
    return 1.0


class PathExplainer:
    """A booster's trees as flat arrays, walked in compiled code for raw scores + contributions."""

    # below this many rows one thread is faster than starting the parallel loop
    PARALLEL_MIN_ROWS = 512

    def __init__(self, booster: lgb.Booster):
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("path contributions support binary/regression boosters only")
        self.n_features = dump["max_feature_idx"] + 1
        self.sigmoid = _binary_sigmoid(str(dump.get("objective", "")))
        nodes: dict[str, list] = {k: [] for k in (
            "feature", "threshold", "left", "right", "default_left", "missing", "is_cat",
            "cat_start", "cat_end", "value")}
        cat_values: list[int] = []
        roots: list[int] = []

        def add(node: dict) -> int:
            i = len(nodes["feature"])
            for k in nodes:
                nodes[k].append(0)
            if "leaf_value" in node or "split_feature" not in node:
                if node.get("leaf_coeff"):
                    raise ValueError("path contributions do not support linear trees")
                nodes["feature"][i] = -1
                nodes["value"][i] = float(node.get("leaf_value", 0.0))
                return i
            nodes["feature"][i] = int(node["split_feature"])
            nodes["value"][i] = float(node["internal_value"])
            nodes["default_left"][i] = bool(node["default_left"])
            nodes["missing"][i] = _MISSING[node["missing_type"]]
            if node["decision_type"] == "==":
                nodes["is_cat"][i] = True
                cats = [int(c) for c in str(node["threshold"]).split("||") if c != ""]
                nodes["cat_start"][i] = len(cat_values)
                cat_values.extend(cats)
                nodes["cat_end"][i] = len(cat_values)
            else:
                nodes["threshold"][i] = float(node["threshold"])
            nodes["left"][i] = add(node["left_child"])
            nodes["right"][i] = add(node["right_child"])
            return i

        for tree in dump["tree_info"]:
            roots.append(add(tree["tree_structure"]))
        if dump.get("average_output"):  # random-forest mode: the probability is sigmoid(mean)
            nodes["value"] = [v / max(1, len(roots)) for v in nodes["value"]]
        types = {"feature": np.int32, "threshold": np.float64, "left": np.int32,
                 "right": np.int32, "default_left": np.bool_, "missing": np.int8,
                 "is_cat": np.bool_, "cat_start": np.int64, "cat_end": np.int64,
                 "value": np.float64}
        self._arrays = (np.asarray(roots, dtype=np.int32),
                        *(np.asarray(nodes[k], dtype=types[k]) for k in types),
                        np.asarray(cat_values, dtype=np.int64))
        # order the kernel expects: roots, feature, threshold, left, right, default_left, missing,
        # is_cat, cat_start, cat_end, cat_values, value
        r, feat, thr, lft, rgt, dl, miss, cat, cs, ce, val, cv = self._arrays
        self._args = (r, feat, thr, lft, rgt, dl, miss, cat, cs, ce, cv, val)
        self.trees = len(roots)

    def explain(self, x: np.ndarray, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores (log-odds) and contributions, shaped like LightGBM's ``pred_contrib``
        output: one column per feature and the bias last."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        out = np.zeros((x.shape[0], self.n_features + 1))
        raw = np.empty(x.shape[0])
        if x.shape[0] >= self.PARALLEL_MIN_ROWS and threads != 1:
            previous = numba.get_num_threads()
            if threads > 0:
                numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            try:
                _walk_parallel(x, out, raw, *self._args)
            finally:
                numba.set_num_threads(previous)
        else:
            _walk_serial(x, out, raw, *self._args)
        return raw, out

    def contributions(self, x: np.ndarray, threads: int = 0) -> np.ndarray:
        return self.explain(x, threads)[1]

    def explain_top(self, x: np.ndarray, k: int, threads: int = 0,
                    linear: np.ndarray | None = None, tree_scale: float = 1.0,
                    linear_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw scores and each row's ``k`` largest positive contributions (column indices padded
        with -1, and their values), in one compiled pass that keeps a single row's contributions
        at a time: no rows x features array is written or read again.

        With ``linear`` (rows x (features + 1), a linear part's contributions) the contributions
        ranked are ``tree_scale`` x the trees' + ``linear_scale`` x ``linear``, and the raw score
        returned is their sum (the blend's margin)."""
        x = _rows_or_columns(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        n = x.shape[0]
        if linear is None:
            linear = np.empty((0, self.n_features + 1))
        elif linear.shape != (n, self.n_features + 1):
            raise ValueError(f"linear contributions must be {(n, self.n_features + 1)}, "
                             f"got {linear.shape}")
        linear = np.ascontiguousarray(linear, dtype=np.float64)
        raw = np.empty(n)
        order = np.full((n, max(k, 0)), -1, dtype=np.int64)
        top = np.zeros((n, max(k, 0)))
        parallel = n >= self.PARALLEL_MIN_ROWS and threads != 1
        previous = numba.get_num_threads()
        if parallel and threads > 0:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            if parallel:
                _walk_top_parallel(numba.get_num_threads(), x, linear, float(tree_scale),
                                   float(linear_scale), max(k, 0), raw, order, top, *self._args)
            else:
                _walk_top_rows(0, n, x, linear, float(tree_scale), float(linear_scale),
                               max(k, 0), raw, order, top, *self._args)
        finally:
            numba.set_num_threads(previous)
        return raw, order, top

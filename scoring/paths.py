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
from contextlib import contextmanager

import lightgbm as lgb
import numba
import numpy as np

from scoring.forest import (  # noqa: F401 - the walk's layout, compiled in as constants
    _ZERO,
    CAT_END,
    CAT_START,
    CATEGORICAL,
    DELTA_LEFT,
    DELTA_RIGHT,
    FEATURE,
    FLAGS,
    LEFT,
    NAN_LEFT,
    RIGHT,
    THRESHOLD,
    ZERO_MISSING,
    Forest,
)

log = logging.getLogger(__name__)


@numba.njit(cache=True, nogil=True)
def _goes_left_slow(v, flags, threshold, start, end, cat_values):
    """The rare splits: categorical (LightGBM: NaN and negative codes go right; the code is the
    value truncated toward zero) and zero-as-missing numerical splits."""
    if flags & CATEGORICAL:
        if math.isnan(v) or not -2147483648.0 < v < 2147483648.0:
            return False
        code = int(v)
        if code < 0:
            return False
        for k in range(start, end):
            if cat_values[k] == code:
                return True
        return False
    if math.isnan(v) or abs(v) <= _ZERO:
        return (flags & NAN_LEFT) != 0
    return v <= threshold


@numba.njit(cache=True, nogil=True)
def _walk_row(row, out, roots, root_value, leaf_value, node_int, node_float, cat_values):
    """Adds one row's path contributions to ``out`` (length features + 1; last = bias) and returns
    the raw score (the leaves' values summed in tree order, as LightGBM does)."""
    raw = 0.0
    bias = 0.0
    for t in range(roots.shape[0]):
        bias += root_value[t]
        node = roots[t]
        while node >= 0:
            f = node_int[node, FEATURE]
            flags = node_int[node, FLAGS]
            v = row[f]
            if flags <= NAN_LEFT:  # a plain numerical split: nearly all of them
                left = v <= node_float[node, THRESHOLD] or (flags == NAN_LEFT and v != v)
            else:
                left = _goes_left_slow(v, flags, node_float[node, THRESHOLD],
                                       node_int[node, CAT_START], node_int[node, CAT_END],
                                       cat_values)
            side = LEFT if left else RIGHT  # LEFT, RIGHT = DELTA_LEFT, DELTA_RIGHT
            out[f] += node_float[node, side]
            node = node_int[node, side]
        raw += leaf_value[~node]
    out[out.shape[0] - 1] += bias
    return raw


@numba.njit(cache=True, nogil=True)
def _walk_rows(lo, hi, x, out, raw, roots, root_value, leaf_value, node_int, node_float,
               cat_values):
    for i in range(lo, hi):
        raw[i] = _walk_row(x[i], out[i], roots, root_value, leaf_value, node_int, node_float,
                           cat_values)


@numba.njit(cache=True, nogil=True, parallel=True)
def _walk_parallel(blocks, x, out, raw, roots, root_value, leaf_value, node_int, node_float,
                   cat_values):
    n = x.shape[0]
    size = (n + blocks - 1) // blocks
    for b in numba.prange(blocks):
        _walk_rows(b * size, min(n, (b + 1) * size), x, out, raw, roots, root_value, leaf_value,
                   node_int, node_float, cat_values)


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
                   root_value, leaf_value, node_int, node_float, cat_values):
    width = x.shape[1]
    buf = np.empty(width + 1)
    row = np.empty(width)  # the row, contiguous (``x`` may be column-major): the walk's reads
    blend = linear.shape[0] > 0
    for i in range(lo, hi):
        buf[:] = 0.0
        for j in range(width):
            row[j] = x[i, j]
        r = _walk_row(row, buf, roots, root_value, leaf_value, node_int, node_float, cat_values)
        if blend:  # the blended contributions, and the margin as their sum
            r = 0.0
            for f in range(buf.shape[0]):
                buf[f] = tree_scale * buf[f] + linear_scale * linear[i, f]
                r += buf[f]
        raw[i] = r
        _top_row(buf, width, k, order[i], top[i])


@numba.njit(cache=True, nogil=True, parallel=True)
def _walk_top_parallel(blocks, x, linear, tree_scale, linear_scale, k, raw, order, top, roots,
                       root_value, leaf_value, node_int, node_float, cat_values):
    n = x.shape[0]
    size = (n + blocks - 1) // blocks
    for b in numba.prange(blocks):
        _walk_top_rows(b * size, min(n, (b + 1) * size), x, linear, tree_scale, linear_scale, k,
                       raw, order, top, roots, root_value, leaf_value, node_int, node_float,
                       cat_values)


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
    column-major: built column by column; the walk copies each row into a contiguous buffer
    first), copied only when it is neither."""
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
    """A booster's trees packed (``Forest``), walked in compiled code for raw scores +
    contributions."""

    # below this many rows one thread is faster than starting the parallel loop
    PARALLEL_MIN_ROWS = 512

    def __init__(self, booster: lgb.Booster):
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("path contributions support binary/regression boosters only")
        self.n_features = dump["max_feature_idx"] + 1
        self.sigmoid = _binary_sigmoid(str(dump.get("objective", "")))
        self.forest = Forest.of(dump)
        self._args = self.forest.arrays
        self.trees = len(self.forest.roots)

    def _threads(self, n: int, threads: int) -> int:
        """How many blocks to walk in parallel (1: in this thread, no parallel loop)."""
        if n < self.PARALLEL_MIN_ROWS or threads == 1:
            return 1
        available = numba.config.NUMBA_NUM_THREADS
        return min(threads, available) if threads > 0 else numba.get_num_threads()

    def explain(self, x: np.ndarray, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores (log-odds) and contributions, shaped like LightGBM's ``pred_contrib``
        output: one column per feature and the bias last."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        out = np.zeros((x.shape[0], self.n_features + 1))
        raw = np.empty(x.shape[0])
        blocks = self._threads(len(x), threads)
        if blocks > 1:
            with _numba_threads(blocks):
                _walk_parallel(blocks, x, out, raw, *self._args)
        else:
            _walk_rows(0, len(x), x, out, raw, *self._args)
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
        blocks = self._threads(n, threads)
        args = (x, linear, float(tree_scale), float(linear_scale), max(k, 0), raw, order, top,
                *self._args)
        if blocks > 1:
            with _numba_threads(blocks):
                _walk_top_parallel(blocks, *args)
        else:
            _walk_top_rows(0, n, *args)
        return raw, order, top


@contextmanager
def _numba_threads(threads: int):
    """Numba's thread count set to ``threads`` for the duration, then restored."""
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)

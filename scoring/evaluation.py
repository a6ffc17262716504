"""Evaluation measures shared by training (hold-out) and monitoring (back-tests)."""

from __future__ import annotations

import numpy as np


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-count bins, weighted by bin size."""
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(error / len(y))


def lift_and_capture(y: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """Churn rate in the top ``share`` over the base rate, and share of all churners caught."""
    n = max(1, int(round(len(y) * share)))
    top = np.argsort(-score, kind="stable")[:n]
    base = y.mean()
    return float(y[top].mean() / base if base > 0 else np.nan), float(y[top].sum() / y.sum())

"""Evaluation a retention team can act on: ranking, calibration, lift, and profit of acting."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from scoring.evaluation import expected_calibration_error, lift_and_capture
from training.config import EconomicsConfig

TOP_SHARES = (0.05, 0.10, 0.20)


def profit_curve(y: np.ndarray, score: np.ndarray, econ: EconomicsConfig) -> pd.DataFrame:
    """Profit of contacting the top-k customers, for every k (realised on the labels).

    Each churner contacted is kept with probability ``offer_success_rate`` and brings
    ``customer_value``; every contact costs ``offer_cost``.
    """
    order = np.argsort(-score, kind="stable")
    caught = np.cumsum(y[order])
    k = np.arange(1, len(y) + 1)
    profit = caught * econ.offer_success_rate * econ.customer_value - k * econ.offer_cost
    return pd.DataFrame({"contacted": k, "share": k / len(y), "churners_caught": caught,
                         "profit": profit})


def evaluate(y: np.ndarray, p: np.ndarray, econ: EconomicsConfig) -> dict[str, float]:
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    out = {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, p, labels=[0, 1]),
        "calibration_error": expected_calibration_error(y, p),
        "base_rate": y.mean(),
        "mean_prediction": p.mean(),
        "rows": float(len(y)),
    }
    for share in TOP_SHARES:
        lift, capture = lift_and_capture(y, p, share)
        pct = int(share * 100)
        out[f"lift_top{pct}"] = lift
        out[f"capture_top{pct}"] = capture
    curve = profit_curve(y, p, econ)
    best = curve["profit"].idxmax()
    out["best_profit"] = max(0.0, float(curve.loc[best, "profit"]))
    out["best_profit_share"] = float(curve.loc[best, "share"]) if curve.loc[best, "profit"] > 0 \
        else 0.0
    return {k: float(v) for k, v in out.items()}


def by_segment(frame: pd.DataFrame, y: np.ndarray, p: np.ndarray, columns: tuple[str, ...],
               econ: EconomicsConfig, min_rows: int = 50) -> dict[str, float]:
    """ROC AUC, churn rate and mean prediction per value of each segment column present."""
    out = {}
    for col in columns:
        if col not in frame.columns:
            continue
        values = frame[col].astype("str").to_numpy()
        for v in pd.unique(values):
            m = values == v
            if m.sum() < min_rows or len(np.unique(y[m])) < 2:
                continue
            key = f"{col}.{v}".replace(" ", "_")
            out[f"seg.{key}.roc_auc"] = float(roc_auc_score(y[m], p[m]))
            out[f"seg.{key}.churn_rate"] = float(y[m].mean())
            out[f"seg.{key}.mean_prediction"] = float(p[m].mean())
    return out

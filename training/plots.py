"""Evaluation plots as PNG files: ROC, precision-recall, calibration, gains, profit, importance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from training.config import EconomicsConfig  # noqa: E402
from training.metrics import profit_curve  # noqa: E402


def _save(fig, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluation_plots(y: np.ndarray, scores: dict[str, np.ndarray], econ: EconomicsConfig,
                     importance: pd.Series, folder: str | Path) -> list[Path]:
    """``scores``: the model first ("model"), then baselines, all on the same hold-out."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    model = scores["model"]

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name, lw=2 if name == "model" else 1)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (hold-out)")
    ax.legend(loc="lower right")
    paths.append(_save(fig, folder, "roc"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        prec, rec, _ = precision_recall_curve(y, s)
        ax.plot(rec, prec, label=name, lw=2 if name == "model" else 1)
    ax.axhline(y.mean(), color="k", ls=":", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (hold-out)")
    ax.legend()
    paths.append(_save(fig, folder, "precision_recall"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    order = np.argsort(model)
    bins = [b for b in np.array_split(order, 10) if len(b)]
    ax.plot([model[b].mean() for b in bins], [y[b].mean() for b in bins], "o-", label="model")
    top = max(max(model[b].mean() for b in bins), max(y[b].mean() for b in bins)) * 1.05
    ax.plot([0, top], [0, top], "k:", lw=0.8, label="perfect")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate",
           title="Calibration (deciles, hold-out)")
    ax.legend()
    paths.append(_save(fig, folder, "calibration"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        curve = profit_curve(y, s, econ)
        ax.plot(curve["share"], curve["churners_caught"] / y.sum(), label=name,
                lw=2 if name == "model" else 1)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="random")
    ax.set(xlabel="share of customers contacted (by risk)", ylabel="share of churners caught",
           title="Cumulative gains (hold-out)")
    ax.legend(loc="lower right")
    paths.append(_save(fig, folder, "gains"))

    fig, ax = plt.subplots(figsize=(5.5, 5))
    curve = profit_curve(y, model, econ)
    ax.plot(curve["share"], curve["profit"], label="model")
    best = curve["profit"].idxmax()
    ax.axvline(curve.loc[best, "share"], color="g", ls="--", lw=1,
               label=f"best: top {curve.loc[best, 'share']:.0%}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="share of customers contacted (by risk)", ylabel="profit",
           title=f"Profit of acting (cost {econ.offer_cost:g}, value {econ.customer_value:g}, "
                 f"success {econ.offer_success_rate:.0%})")
    ax.legend()
    paths.append(_save(fig, folder, "profit"))

    top = importance.sort_values(ascending=True).tail(20)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.barh(top.index, top.to_numpy())
    ax.set(xlabel="mean |contribution| (log-odds)", title="What drives churn risk (top 20)")
    paths.append(_save(fig, folder, "feature_importance"))
    return paths

"""Fitting and judging a churn model, with no MLflow: the model, its hold-out metrics, the
baselines it is compared with, the verdict and what drives it. ``training.pipeline`` logs it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.scorer import ChurnScorer
from training.baselines import RANK_ONLY, baseline_scores
from training.config import TrainConfig
from training.dataset import HOLDOUT, TrainingData
from training.metrics import by_segment, evaluate
from training.model import FitInfo, fit_churn_model


@dataclass
class TrainOutcome:
    scorer: ChurnScorer
    info: FitInfo
    metrics: dict[str, float]  # the model on the hold-out
    baselines: dict[str, dict[str, float]]  # each baseline on the same hold-out
    beats_baselines: bool
    verdict: str
    segments: dict[str, float]  # metrics per segment of the hold-out
    importance: pd.Series  # mean absolute contribution per feature on the hold-out
    holdout: pd.DataFrame  # the hold-out rows (features, label)
    y_holdout: np.ndarray
    scores: dict[str, np.ndarray]  # the model's and each baseline's hold-out scores


def fit_and_evaluate(data: TrainingData, config: TrainConfig, tune_trials: int = 0,
                     meta: dict | None = None) -> TrainOutcome:
    """Fit the calibrated model and judge it on the hold-out against the baselines."""
    scorer, info = fit_churn_model(data, config, tune_trials, meta=meta)
    holdout = data.rows(HOLDOUT)
    x_h, y_h = data.x[holdout], data.y[holdout]
    p_h = scorer.predict(x_h)
    metrics = evaluate(y_h, p_h, config.economics)
    metrics["cv_roc_auc"] = info.cv_auc
    base_scores = {name: _as_probability(s) for name, s in baseline_scores(data).items()}
    baselines = {name: _rank_only(name, evaluate(y_h, s, config.economics))
                 for name, s in base_scores.items()}
    ok, verdict = judge(metrics, baselines, config.primary_metric)
    hold_frame = data.frame.loc[holdout].reset_index(drop=True)
    segments = by_segment(hold_frame, y_h, p_h, config.segment_columns, config.economics)
    contrib = scorer.contributions(x_h[: min(len(x_h), 20_000)])[:, :-1]
    importance = pd.Series(np.abs(contrib).mean(axis=0), index=data.features)
    return TrainOutcome(scorer, info, metrics, baselines, ok, verdict, segments, importance,
                        hold_frame, y_h, {"model": p_h, **base_scores})


def judge(metrics: dict, baselines: dict[str, dict], primary: str) -> tuple[bool, str]:
    """Does the model beat every baseline on the primary metric? And the sentence that says so."""
    higher = primary in ("roc_auc", "pr_auc")
    worse = [name for name, m in baselines.items()
             if (m[primary] >= metrics[primary] if higher else m[primary] <= metrics[primary])]
    if worse:
        return False, (f"the model does NOT beat {', '.join(worse)} on {primary} "
                       f"({metrics[primary]:.4f} vs "
                       f"{', '.join(f'{baselines[w][primary]:.4f}' for w in worse)}): "
                       "do not promote it without looking at why")
    best = max(baselines.items(), key=lambda kv: kv[1][primary] if higher else -kv[1][primary],
               default=None)
    if best is None:
        return True, "no baseline applies"
    return True, (f"the model beats every baseline on {primary}: {metrics[primary]:.4f} vs "
                  f"{best[1][primary]:.4f} ({best[0]}, the best baseline)")


def _rank_only(name: str, metrics: dict[str, float]) -> dict[str, float]:
    """A rule that only ranks has no probabilities: drop the metrics that need them."""
    if name in RANK_ONLY:
        for key in ("brier", "log_loss", "calibration_error", "mean_prediction"):
            metrics[key] = float("nan")
    return metrics


def _as_probability(score: np.ndarray) -> np.ndarray:
    """Baselines that only rank (the recency rule) become pseudo-probabilities by rank."""
    score = np.asarray(score, dtype=np.float64)
    if score.min() >= 0 and score.max() <= 1:
        return score
    ranks = pd.Series(score).rank(pct=True).to_numpy()
    return np.clip(ranks, 1e-4, 1 - 1e-4)

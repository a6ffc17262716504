"""The promotion gate: ``champion`` moves to the challenger only if it is no worse on the same data.

Both models are scored on the challenger's own hold-out (logged with its run). The challenger is
promoted when its primary metric is at least the champion's minus the tolerance. ``force``
promotes anyway and says so on the model version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from scoring.model_store import load_holdout, load_scorer, use_tracking
from scoring.scorer import ScoringInputError
from training.config import EconomicsConfig
from training.metrics import evaluate
from training.tracking import CHALLENGER, CHAMPION

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False}


class PromotionError(RuntimeError):
    pass


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    challenger_version: str
    champion_version: str | None  # the champion before the decision
    metric: str
    challenger_value: float | None
    champion_value: float | None
    forced: bool
    reason: str


def _alias(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _score(model_uri: str, frame, label) -> dict:
    loaded = load_scorer(model_uri)
    p = loaded.scorer.predict_frame(frame)
    return evaluate(label, p, EconomicsConfig())


def compare(model_name: str, plots_dir: Path | None = None) -> dict[str, dict[str, float]]:
    """Every hold-out metric of the challenger and the champion, on the challenger's hold-out.

    With ``plots_dir``, also ROC and calibration curves of both (``comparison.png``), which are
    logged to the challenger's run as well.
    """
    use_tracking()
    client = MlflowClient()
    challenger = _alias(client, model_name, CHALLENGER)
    if challenger is None:
        raise PromotionError(f"model {model_name!r} has no challenger")
    holdout = load_holdout(challenger.run_id)
    y = holdout["label"].to_numpy(np.float64)
    versions = {f"challenger (v{challenger.version})": challenger.version}
    champion = _alias(client, model_name, CHAMPION)
    if champion is not None and champion.version != challenger.version:
        versions[f"champion (v{champion.version})"] = champion.version
    out, scores = {}, {}
    for label, version in versions.items():
        try:
            p = load_scorer(f"models:/{model_name}/{version}").scorer.predict_frame(holdout)
        except ScoringInputError as exc:
            log.warning("%s cannot score the challenger's hold-out: %s", label, exc)
            continue
        scores[label] = p
        out[label] = evaluate(y, p, EconomicsConfig())
    if plots_dir is not None:
        path = _comparison_plot(y, scores, Path(plots_dir))
        client.log_artifact(challenger.run_id, str(path), "plots")
    return out


def _comparison_plot(y: np.ndarray, scores: dict[str, np.ndarray], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for label, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        axes[0].plot(fpr, tpr, label=label)
        bins = [b for b in np.array_split(np.argsort(p), 10) if len(b)]
        axes[1].plot([p[b].mean() for b in bins], [y[b].mean() for b in bins], "o-", label=label)
    axes[0].plot([0, 1], [0, 1], "k:")
    axes[0].set(title="ROC on the challenger's hold-out", xlabel="false positive rate",
                ylabel="true positive rate")
    top = max(0.05, float(max(p.max() for p in scores.values())))
    axes[1].plot([0, top], [0, top], "k:")
    axes[1].set(title="Calibration (deciles)", xlabel="predicted", ylabel="observed churn")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    path = folder / "comparison.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def promote(model_name: str, metric: str = "roc_auc", tolerance: float = 0.005,
            force: bool = False) -> Promotion:
    use_tracking()
    client = MlflowClient()
    challenger = _alias(client, model_name, CHALLENGER)
    if challenger is None:
        raise PromotionError(f"model {model_name!r} has no {CHALLENGER!r} version: run "
                             "`churn train` first")
    champion = _alias(client, model_name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        return Promotion(False, challenger.version, champion.version, metric, None, None, False,
                         f"version {challenger.version} is already the champion")
    holdout = load_holdout(challenger.run_id)
    y = holdout["label"].to_numpy(np.float64)
    new = _score(f"models:/{model_name}/{challenger.version}", holdout, y)[metric]
    old = None
    if champion is not None:
        try:
            old = _score(f"models:/{model_name}/{champion.version}", holdout, y)[metric]
        except ScoringInputError as exc:
            if not force:
                raise PromotionError(
                    f"the champion (version {champion.version}) cannot score the challenger's "
                    f"hold-out ({exc}); the two models use different features. Use --force to "
                    "promote anyway.") from exc
    higher = HIGHER_IS_BETTER[metric]
    if old is None:
        ok, reason = True, "no champion yet: the first challenger becomes champion"
    else:
        margin = (new - old) if higher else (old - new)
        ok = margin >= -tolerance
        reason = (f"{metric} on the challenger's hold-out: challenger {new:.4f}, champion "
                  f"{old:.4f} (tolerance {tolerance})")
    if not ok and force:
        reason = f"forced: {reason}"
    promoted = ok or force
    _record(client, model_name, challenger.version, promoted, force and not ok, reason, metric,
            new, old, champion.version if champion else None)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
        log.info("promoted %s version %s to %s: %s", model_name, challenger.version, CHAMPION,
                 reason)
    else:
        log.info("refused to promote %s version %s: %s", model_name, challenger.version, reason)
    return Promotion(promoted, challenger.version, champion.version if champion else None, metric,
                     new, old, force and not ok, reason)


def _record(client: MlflowClient, name: str, version: str, promoted: bool, forced: bool,
            reason: str, metric: str, new: float, old: float | None, champion: str | None):
    tags = {"promotion.decision": "promoted" if promoted else "refused",
            "promotion.forced": str(forced).lower(), "promotion.reason": reason,
            "promotion.at": datetime.now(UTC).isoformat(timespec="seconds"),
            f"promotion.challenger_{metric}": f"{new:.6f}",
            "promotion.previous_champion": champion or ""}
    if old is not None:
        tags[f"promotion.champion_{metric}"] = f"{old:.6f}"
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)

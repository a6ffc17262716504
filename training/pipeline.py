"""One training run, end to end: data → model + baselines → evaluation → MLflow run + registry."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.build import FeatureSet, build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.crm import CrmData
from scoring.artifact import HOLDOUT_ARTIFACT
from scoring.model_store import experiment_id, use_tracking
from scoring.offers.catalogue import Catalogue, load_catalogue
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer
from training.config import TrainConfig
from training.dataset import HOLDOUT, TrainingData, from_feature_set, from_table
from training.model_card import model_card
from training.outcome import TrainOutcome, fit_and_evaluate
from training.plots import evaluation_plots
from training.policy_evaluation import judge_at_training
from training.readouts import apply_readouts
from training.tracking import check_tracking, clean_metrics, log_frame, log_model
from training.uplift import campaign_data, fit_uplift

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    model_version: str
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    beats_baselines: bool
    verdict: str
    plots: list[str] = field(default_factory=list)
    selection: dict = field(default_factory=dict)  # the cross-validation's candidates and choice

    def summary(self) -> dict:
        return {"run_id": self.run_id, "model_uri": self.model_uri,
                "model_version": self.model_version, "metrics": self.metrics,
                "selection": self.selection}


def train_on_events(crm: CrmData, cutoffs: list[pd.Timestamp], features: FeatureConfig,
                    labels: LabelConfig, config: TrainConfig, tune_trials: int = 0,
                    plots_dir: Path | None = None, catalogue: Catalogue | None = None,
                    data_end: pd.Timestamp | None = None,
                    readouts: pd.DataFrame | None = None) -> TrainResult:
    """Build features on ``cutoffs`` and train; with ``data_end`` (a declared as-of date), labels
    are judged against it rather than against the latest timestamp in the data."""
    check_tracking()  # fail in seconds when MLflow is down, before the features are built
    fs = build_feature_set(crm, cutoffs, features, labels, data_end=data_end)
    return train_on_feature_set(fs, crm.fingerprint(), features, config, tune_trials, plots_dir,
                                crm=crm, catalogue=catalogue, readouts=readouts)


def train_on_feature_set(fs: FeatureSet, data_fingerprint: str, features: FeatureConfig,
                         config: TrainConfig, tune_trials: int = 0,
                         plots_dir: Path | None = None, crm: CrmData | None = None,
                         catalogue: Catalogue | None = None,
                         readouts: pd.DataFrame | None = None) -> TrainResult:
    """Train on a built feature set; with ``crm``, also learn offer effects from its campaigns,
    bounded by the latest verdicts of campaign ``readouts`` (``training.readouts``)."""
    labels = fs.label_config or LabelConfig()
    features = fs.config or features  # as built: with the event vocabulary found in the data
    data = from_feature_set(fs, config)
    holdout_cutoffs = sorted(data.frame.loc[data.rows(HOLDOUT), "cutoff"].unique())
    cutoffs = sorted(fs.frame["cutoff"].unique())
    params = {"source": "events", "definition": labels.definition,
              "horizon_days": labels.horizon_days,
              "cutoffs": ",".join(str(pd.Timestamp(c).date()) for c in cutoffs),
              "holdout_cutoffs": ",".join(str(pd.Timestamp(c).date()) for c in holdout_cutoffs),
              "windows": ",".join(map(str, features.windows))}
    tags = {"data_fingerprint": data_fingerprint}
    meta = {"label": labels.model_dump(), "features_config": features.model_dump(),
            "source": "events"}
    uplift = None
    if crm is not None:
        uplift = _uplift_step(crm, features, labels, catalogue or load_catalogue(), config,
                              readouts)
    return _train_and_log(data, config, params, tags, meta, tune_trials, plots_dir, uplift)


def _uplift_step(crm: CrmData, features: FeatureConfig, labels: LabelConfig,
                 catalogue: Catalogue, config: TrainConfig, readouts: pd.DataFrame | None = None):
    """Learn offer effects for the fitted churn model; logged in the same run, they travel in the
    same model version."""
    def step(scorer: ChurnScorer, plots_dir: Path | None) -> UpliftModels:
        data = campaign_data(crm, scorer, features, labels, catalogue.uplift)
        fit = fit_uplift(data, scorer, catalogue)
        if readouts is not None and len(readouts):
            apply_readouts(fit.models, readouts)
        _log_uplift(data, fit, plots_dir)
        judge_at_training(data, crm.offers, scorer, fit.models, catalogue)
        return fit.models
    return step


def _log_uplift(data, fit, plots_dir: Path | None) -> None:
    mlflow.log_metrics(clean_metrics(fit.metrics))
    mlflow.set_tags({f"uplift.{k}": f"{m.source}: {m.note}" for k, m in fit.models.models.items()})
    if data is not None and fit.held_out:
        _log_qini(data, fit.held_out, plots_dir)


def _log_qini(data, held_out: dict[str, np.ndarray], plots_dir: Path | None) -> None:
    import matplotlib.pyplot as plt

    from training.uplift import qini

    fig, ax = plt.subplots(figsize=(5.5, 5))
    frame = data.frame
    for oid, effect in held_out.items():
        rows = np.flatnonzero(~np.isnan(effect))
        curve, coef = qini(effect[rows], frame["treated"].astype(bool).to_numpy()[rows],
                           1 - frame["outcome"].to_numpy(float)[rows])
        share = np.arange(1, len(curve) + 1) / len(curve)
        ax.plot(share, curve, label=f"{oid} (Qini {coef:.4f})")
        ax.plot([0, 1], [0, curve[-1]], ":", lw=0.8, color=ax.lines[-1].get_color())
    ax.set(xlabel="share targeted (by predicted benefit)", ylabel="extra customers kept",
           title="Qini curves, each campaign predicted by the others")
    ax.legend()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(plots_dir) if plots_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(folder / "qini.png", dpi=110)
        plt.close(fig)
        mlflow.log_artifact(str(folder / "qini.png"), artifact_path="plots")


def train_on_table(path: Path, frame: pd.DataFrame, id_column: str, label_column: str,
                   config: TrainConfig, time_column: str | None = None, tune_trials: int = 0,
                   plots_dir: Path | None = None) -> TrainResult:
    check_tracking()  # fail in seconds when MLflow is down, before the model is fitted
    data = from_table(frame, id_column, label_column, config, time_column, source_name=path.name)
    params = {"source": "table", "table": path.name, "id_column": id_column,
              "label_column": label_column, "time_column": time_column or "",
              "split": "time" if time_column else "stratified random"}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""
    tags = {"data_fingerprint": digest}
    meta = {"source": "table", "id_column": id_column, "label_column": label_column}
    return _train_and_log(data, config, params, tags, meta, tune_trials, plots_dir)


def _frame_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()) \
        .hexdigest()[:16]


def _train_and_log(data: TrainingData, config: TrainConfig, params: dict, tags: dict, meta: dict,
                   tune_trials: int, plots_dir: Path | None, uplift_step=None) -> TrainResult:
    use_tracking()
    with mlflow.start_run(experiment_id=experiment_id(config.experiment)) as run:
        counts = {p: int(data.rows(p).sum()) for p in ("fit", "valid", "calib", "holdout")}
        params = {**params, **{f"rows_{k}": v for k, v in counts.items()},
                  "features": len(data.features)}
        mlflow.log_params({**params, "seed": config.seed, "calibration": config.calibration,
                           "tune_trials": tune_trials})
        mlflow.set_tags({**tags, "training_set_hash": _frame_hash(data.frame),
                         "model_name": config.model_name})
        outcome = fit_and_evaluate(data, config, tune_trials,
                                   meta={**meta, "model_name": config.model_name,
                                         "run_id": run.info.run_id})
        plots = _log_outcome(outcome, config, plots_dir)
        uplift = uplift_step(outcome.scorer, plots_dir) if uplift_step else None
        model_uri, version = log_model(outcome.scorer, outcome.holdout, config.model_name, uplift)
        card = model_card(config.model_name, version, run.info.run_id, params, outcome.metrics,
                          outcome.baselines, outcome.verdict, outcome.importance, data.source,
                          outcome.info.selection)
        mlflow.log_text(card, "model_card.md")
        MlflowClient().update_model_version(config.model_name, version, description=card)
        log.info("run %s: hold-out %s %.4f; %s", run.info.run_id, config.primary_metric,
                 outcome.metrics[config.primary_metric], outcome.verdict)
        return TrainResult(run.info.run_id, model_uri, version, outcome.metrics, outcome.baselines,
                           outcome.beats_baselines, outcome.verdict, [str(p) for p in plots],
                           outcome.info.selection)


def _log_outcome(outcome: TrainOutcome, config: TrainConfig, plots_dir: Path | None) -> list[Path]:
    """The fitted model's settings, metrics, baselines, verdict, plots, importance and hold-out
    rows, in the active run."""
    info = outcome.info
    mlflow.log_params({f"lgbm_{k}": v for k, v in info.params.items()
                       if k not in ("verbosity", "metric", "objective")})
    mlflow.log_param("best_rounds", info.best_rounds)
    mlflow.log_params({k: v for k, v in info.selection.items() if not k.startswith("cv_auc")})
    mlflow.log_metrics(clean_metrics({k: v for k, v in info.selection.items()
                                      if k.startswith("cv_auc")}))
    mlflow.log_metrics(clean_metrics({**outcome.metrics, **outcome.segments}))
    for name, m in outcome.baselines.items():
        mlflow.log_metrics(clean_metrics({f"baseline.{name}.{k}": v for k, v in m.items()}))
    mlflow.set_tags({"beats_baselines": str(outcome.beats_baselines).lower(),
                     "verdict": outcome.verdict})
    plots = _log_plots(outcome.y_holdout, outcome.scores, config, outcome.importance, plots_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feature_importance.csv"
        outcome.importance.sort_values(ascending=False).rename("mean_abs_contribution") \
            .to_csv(path, index_label="feature")
        mlflow.log_artifact(str(path))
        summary = Path(tmp) / "evaluation.json"
        summary.write_text(json.dumps({"model": outcome.metrics, "baselines": outcome.baselines,
                                       "segments": outcome.segments, "verdict": outcome.verdict,
                                       "fit": asdict(info)}, indent=1, default=str))
        mlflow.log_artifact(str(summary))
    log_frame(outcome.holdout, HOLDOUT_ARTIFACT)
    return plots


def _log_plots(y: np.ndarray, scores: dict[str, np.ndarray], config: TrainConfig,
               importance: pd.Series, plots_dir: Path | None) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(plots_dir) if plots_dir else Path(tmp)
        paths = evaluation_plots(y, scores, config.economics, importance, folder)
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="plots")
        return paths if plots_dir else []

"""The scoring job's wiring: load the model, get the rows (file, raw data or Spark), run, track."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from jobs.batch import BatchConfig, BatchError, BatchSummary, run_batch, score_table
from scoring.bands import RiskBands
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel, load_scorer, use_tracking
from scoring.offers.catalogue import load_catalogue

log = logging.getLogger(__name__)


def load_model(uri: str) -> LoadedModel:
    use_tracking()
    try:
        return load_scorer(uri)
    except Exception as exc:  # noqa: BLE001 - a wrong URI is bad input, not a crash
        raise ValueError(f"cannot load model {uri}: {exc}") from exc


def run_scoring_job(model_uri: str, out: Path, config: BatchConfig, settings, *,
                    features: Path | None = None, data: Path | None = None, cutoff=None,
                    catalogue: Path | None = None, engine: str = "local",
                    spark_master: str = "local[*]", track: bool = True,
                    bands: RiskBands | None = None) -> tuple[BatchSummary, LoadedModel]:
    loaded = load_model(model_uri)
    core = ScoringCore(loaded, load_catalogue(catalogue), bands=bands or RiskBands())
    if engine == "spark":
        from jobs.spark_scoring import spark_score

        summary = spark_score(loaded, core, out, config, settings, features=features, data=data,
                              cutoff=cutoff, master=spark_master)
    elif features is not None:
        summary = score_table(loaded, core, features, out, config)
    else:
        from features.build import build_feature_set
        from features.io import load_crm

        crm = load_crm(data)
        fs = build_feature_set(crm, [pd.Timestamp(cutoff)],
                               loaded.scorer.feature_config(settings.features), settings.labels)
        summary = run_batch(loaded, core, fs.frame, out, config,
                            f"{crm.fingerprint()}@{pd.Timestamp(cutoff).date()}",
                            str(pd.Timestamp(cutoff).date()))
    if track:
        _track(loaded, out, summary, config, engine)
    return summary, loaded


def _track(loaded: LoadedModel, out: Path, summary: BatchSummary, config: BatchConfig,
           engine: str) -> None:
    import mlflow

    from scoring.model_store import experiment_id

    with mlflow.start_run(experiment_id=experiment_id("churn-scoring"),
                          run_name=f"score {Path(out).name}"):
        mlflow.log_params({"model_uri": loaded.uri, "model_version": loaded.version,
                           "engine": engine, "chunk_size": config.chunk_size,
                           "campaign_budget": config.campaign_budget, "output": str(out)})
        mlflow.log_metrics({k: float(v) for k, v in summary.as_dict().items()
                            if isinstance(v, int | float)})
        mlflow.log_metrics({f"offers.{k}": v for k, v in summary.offers.items()})
        manifest = Path(out).with_name(Path(out).stem + ".manifest.json")
        if manifest.exists():
            mlflow.log_artifact(str(manifest))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "summary.json"
            path.write_text(json.dumps(summary.as_dict(), indent=1))
            mlflow.log_artifact(str(path))


__all__ = ["run_scoring_job", "BatchError"]

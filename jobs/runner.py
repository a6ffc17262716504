"""The scoring job's wiring: check the output and the engine, load the model, get the rows (file,
raw data or Spark), run, publish, track."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from jobs.batch import BatchConfig, BatchError, BatchSummary, run_batch, score_table
from jobs.spark_session import SparkOptions
from jobs.storage import (
    Location,
    check_writable,
    local_copy,
    location,
    output_files,
    staged_output,
)
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
        raise BatchError(f"cannot load model {uri}: {exc}") from exc


def run_scoring_job(model_uri: str, out, config: BatchConfig, settings, *,
                    features=None, data=None, cutoff=None,
                    catalogue: Path | None = None, engine: str = "local",
                    spark: SparkOptions | str | None = "local[*]", track: bool = True,
                    bands: RiskBands | None = None) -> tuple[BatchSummary, LoadedModel]:
    """Score and write ``out``: ``out``, ``features`` and ``data`` are paths or URIs
    (``file://``; other stores through pyarrow, see ``jobs.storage``). On Spark the session is
    made and checked first, so a missing cluster fails before the model is loaded."""
    target = location(out)
    if target.suffix not in (".parquet", ".csv"):
        raise BatchError(f"--out must end in .parquet or .csv, got {target.name}")
    check_writable(target)
    if engine == "spark":
        from jobs.spark_session import spark_session

        spark_session(spark)
    loaded = load_model(model_uri)
    core = ScoringCore(loaded, load_catalogue(catalogue), bands=bands or RiskBands())
    with staged_output(target, also=output_files(target)[:-1]) as local_out:
        summary = _score(engine, loaded, core, local_out, target, config, settings, features,
                         data, cutoff, spark)
        if track:
            _track(loaded, local_out, target.uri, summary, config, engine)
    return summary, loaded


def _score(engine: str, loaded: LoadedModel, core: ScoringCore, local_out: Path,
           target: Location, config: BatchConfig, settings, features, data, cutoff, spark
           ) -> BatchSummary:
    if engine == "spark":
        from jobs.spark_scoring import spark_score

        return spark_score(loaded, core, local_out, config, settings, features=features,
                           data=data, cutoff=cutoff, spark=spark,
                           stage=target.sibling(f".{target.name}.spark.tmp"))
    if features is not None:
        with local_copy(location(features)) as table:
            return score_table(loaded, core, table, local_out, config)
    from features.build import build_feature_set
    from features.io import load_crm

    with local_copy(location(data)) as folder:
        crm = load_crm(folder)
    fs = build_feature_set(crm, [pd.Timestamp(cutoff)],
                           loaded.scorer.feature_config(settings.features), settings.labels)
    return run_batch(loaded, core, fs.frame, local_out, config,
                     f"{crm.fingerprint()}@{pd.Timestamp(cutoff).date()}",
                     str(pd.Timestamp(cutoff).date()))


def _track(loaded: LoadedModel, out: Path, uri: str, summary: BatchSummary,
           config: BatchConfig, engine: str) -> None:
    import mlflow

    from scoring.model_store import experiment_id

    with mlflow.start_run(experiment_id=experiment_id("churn-scoring"),
                          run_name=f"score {Path(out).name}"):
        mlflow.log_params({"model_uri": loaded.uri, "model_version": loaded.version,
                           "engine": engine, "chunk_size": config.chunk_size,
                           "campaign_budget": config.campaign_budget, "output": uri})
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

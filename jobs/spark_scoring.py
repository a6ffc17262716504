"""The batch job on Apache Spark: the same scoring and offer code in ``mapInPandas`` partitions.

Features come from a file or are built on Spark from raw data (``jobs.spark_features``). The
model (booster, calibrator, uplift) is shipped with ``SparkContext.addFile`` and loaded once per
Python worker. Each partition returns scores, bands, reasons and every offer's net value; the
budgeted allocation then runs as a final single-machine step over the scored rows (it needs the
whole base), writing the same output, quarantine and manifest as the local engine.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from jobs.batch import quarantine_mask, score_chunk
from jobs.batch_output import BatchConfig, BatchError, BatchSummary, ScoredRows, finish
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer

log = logging.getLogger(__name__)
_WORKER_MODELS: dict[str, LoadedModel] = {}


def _worker_model(folder: str, name: str | None, version: str | None) -> LoadedModel:
    if folder not in _WORKER_MODELS:
        uplift_dir = Path(folder) / "uplift"
        uplift = UpliftModels.load(uplift_dir) if (uplift_dir / "uplift.json").exists() else None
        _WORKER_MODELS[folder] = LoadedModel(ChurnScorer.load(Path(folder) / "scorer"),
                                             "", name, version, None, uplift)
    return _WORKER_MODELS[folder]


def spark_score(model: LoadedModel, core: ScoringCore, out: Path, config: BatchConfig, settings,
                *, features: Path | None = None, data: Path | None = None, cutoff=None,
                master: str = "local[*]") -> BatchSummary:
    from pyspark import SparkFiles

    from jobs.spark_features import spark_feature_frame, spark_session

    spark = spark_session(master)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if features is not None:
        features = Path(features)
        if not features.exists():
            raise FileNotFoundError(f"{features} does not exist")
        frame = (spark.read.parquet(str(features)) if features.suffix == ".parquet"
                 else spark.read.option("header", True).option("inferSchema", True)
                 .csv(str(features)))
        fingerprint = f"file:{features.name}"
        cutoff_text = ""
    else:
        frame, local = spark_feature_frame(data, [pd.Timestamp(cutoff)],
                                           model.scorer.feature_config(settings.features),
                                           settings.labels, population_only=True, master=master)
        fingerprint = f"{local.fingerprint()}@{pd.Timestamp(cutoff).date()}"
        cutoff_text = str(pd.Timestamp(cutoff).date())
    if config.id_column not in frame.columns:
        raise BatchError(f"the input has no {config.id_column!r} column")
    ship = Path(tempfile.mkdtemp(prefix="churn-model-"))
    model.scorer.save(ship / "scorer")
    if model.uplift is not None:
        model.uplift.save(ship / "uplift")
    spark.sparkContext.addFile(str(ship), recursive=True)
    shipped, name, version = ship.name, model.name, model.version
    catalogue, value, bands = core.catalogue, core.value, core.bands
    offer_ids = catalogue.ids
    id_col = config.id_column
    schema = (f"`{id_col}` string, churn_probability double, risk_band string, reasons string, "
              "cutoff string, quarantine_reason string, "
              + ", ".join(f"`net_{o}` double, `red_{o}` double" for o in offer_ids))

    def score_partition(batches):
        m = _worker_model(SparkFiles.get(shipped), name, version)
        worker_core = ScoringCore(m, catalogue, value, bands)
        for pdf in batches:
            if pdf.empty:
                continue
            x = m.scorer.matrix(pdf)
            why = quarantine_mask(worker_core, pdf, x, config)
            good = why == ""
            n = len(pdf)
            out_frame = pd.DataFrame({
                id_col: pdf[id_col].astype(object).where(pdf[id_col].notna(), None).astype(str)
                .where(pdf[id_col].notna(), None).to_numpy(),
                "churn_probability": np.full(n, np.nan), "risk_band": np.full(n, None, object),
                "reasons": np.full(n, None, object),
                "cutoff": (pd.to_datetime(pdf["cutoff"]).dt.date.astype(str).to_numpy()
                           if "cutoff" in pdf.columns else np.full(n, cutoff_text, object)),
                "quarantine_reason": why})
            for o in offer_ids:
                out_frame[f"net_{o}"] = -np.inf
                out_frame[f"red_{o}"] = 0.0
            if good.any():
                cols, opts = score_chunk(worker_core, x[good], config.top_reasons,
                                         config.reasons_min_band)
                idx = np.flatnonzero(good)
                out_frame.loc[idx, "churn_probability"] = cols["churn_probability"]
                out_frame.loc[idx, "risk_band"] = cols["risk_band"]
                out_frame.loc[idx, "reasons"] = cols["reasons"]
                for j, o in enumerate(offer_ids):
                    out_frame.loc[idx, f"net_{o}"] = opts.net[:, j]
                    out_frame.loc[idx, f"red_{o}"] = opts.reduction[:, j]
            yield out_frame

    stage = out.with_name(f".{out.name}.spark.tmp")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        frame.mapInPandas(score_partition, schema=schema).write.mode("overwrite") \
            .parquet(str(stage))
        return _collect_and_finish(model, core, stage, out, config, fingerprint, offer_ids)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(ship, ignore_errors=True)


def _collect_and_finish(model, core, stage: Path, out: Path, config: BatchConfig,
                        fingerprint: str, offer_ids: list[str]) -> BatchSummary:
    """The single-machine step: gather every row's offer values, allocate, write atomically."""
    files = sorted(str(p) for p in stage.glob("*.parquet"))
    scored = ScoredRows(stage, core.catalogue.costs, fingerprint,
                        datetime.now(UTC).replace(microsecond=0).isoformat())
    for batch in ds.dataset(files, format="parquet").to_batches(batch_size=config.chunk_size) \
            if files else []:
        pdf = batch.to_pandas()
        scored.summary.rows_in += len(pdf)
        bad = pdf["quarantine_reason"] != ""
        if bad.any():
            scored.quarantine.append(pdf.loc[bad, [config.id_column, "quarantine_reason"]]
                                     .rename(columns={"quarantine_reason": "reason"}))
        good = pdf[~bad]
        scored.add(good["churn_probability"].to_numpy(float),
                   good[[f"net_{o}" for o in offer_ids]].to_numpy(float),
                   good[[f"red_{o}" for o in offer_ids]].to_numpy(float))
    summary = finish(model, core, scored, out, config)
    log.info("spark scoring: %s", json.dumps(summary.as_dict()))
    return summary

"""The batch job on Apache Spark: the same scoring and offer code in ``mapInPandas`` partitions.

Features come from a file or are built on Spark from raw data (``jobs.spark_features``). The
model (booster, calibrator, uplift) travels as one zip archive (``jobs.spark_ship``), unpacked
once per executor and loaded once per Python worker. Each partition returns scores, bands,
reasons and every offer's net value, staged as Parquet beside the output (on storage every
executor and the driver see); the budgeted allocation then runs as a final single-machine step
over the staged rows (it needs the whole base), writing the same output, quarantine and manifest
as the local engine, atomically. A job that fails leaves neither stage nor output behind: the
stage is removed once the executors have stopped writing (``remove_stage``).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.batch import quarantine_mask, score_chunk
from jobs.batch_keys import CUTOFF, cutoff_text
from jobs.batch_output import (
    BatchConfig,
    BatchError,
    BatchSummary,
    ScoredRows,
    clean_stale,
    finish,
    staged_parts,
)
from jobs.spark_session import SparkOptions, spark_errors, spark_session
from jobs.spark_ship import ship_model, worker_model
from jobs.storage import Location, list_files, local_copy, location, remove_tree
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel

log = logging.getLogger(__name__)


COPIES = "__copies"  # rows sharing the row's (customer, cutoff) key, counted over the whole input
IDLE_WAIT = 30.0  # seconds to wait for the executors to stop writing before the stage is removed


def _score_partition(archive, digest, name, version, core, config, cutoff_day, loads):
    """The function each partition runs (a closure over what it needs, sent by value)."""
    catalogue, value, bands = core.catalogue, core.value, core.bands
    offer_ids = catalogue.ids
    id_col = config.id_column

    def score_partition(batches):
        m = worker_model(archive, digest, name, version, loads)
        worker_core = ScoringCore(m, catalogue, value, bands)
        for pdf in batches:
            if pdf.empty:
                continue
            x = m.scorer.matrix(pdf)
            n = len(pdf)
            duplicated = (pdf[COPIES] > 1).to_numpy() if COPIES in pdf.columns else None
            why = quarantine_mask(worker_core, pdf, x, config, duplicated)
            good = why == ""
            out_frame = pd.DataFrame({
                id_col: pdf[id_col].astype(object).where(pdf[id_col].notna(), None).astype(str)
                .where(pdf[id_col].notna(), None).to_numpy(),
                "churn_probability": np.full(n, np.nan), "risk_band": np.full(n, None, object),
                "reasons": np.full(n, None, object),
                CUTOFF: (cutoff_text(pdf[CUTOFF]) if CUTOFF in pdf.columns
                         else np.full(n, cutoff_day, object)),
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

    schema = (f"`{id_col}` string, churn_probability double, risk_band string, reasons string, "
              "cutoff string, quarantine_reason string, "
              + ", ".join(f"`net_{o}` double, `red_{o}` double" for o in offer_ids))
    return score_partition, schema


def _input_frame(session, model, settings, features: Location | None, data, cutoff,
                 options: SparkOptions):
    """The rows to score as a Spark frame, the input's fingerprint and the cutoff's text."""
    from jobs.spark_features import spark_feature_frame

    if features is not None:
        if not features.exists():
            raise FileNotFoundError(f"{features.uri} does not exist")
        uri = features.spark_uri()
        parquet = (any(f.suffix == ".parquet" for f in list_files(features)) if features.is_dir()
                   else features.suffix == ".parquet")  # a file, or a folder of part files
        frame = (session.read.parquet(uri) if parquet
                 else session.read.option("header", True).option("inferSchema", True).csv(uri))
        return frame, f"file:{features.name}", ""
    frame, local = spark_feature_frame(data, [pd.Timestamp(cutoff)],
                                       model.scorer.feature_config(settings.features),
                                       settings.labels, population_only=True, spark=options)
    day = str(pd.Timestamp(cutoff).date())
    return frame, f"{local.fingerprint()}@{day}", day


def spark_score(model: LoadedModel, core: ScoringCore, out: Path, config: BatchConfig, settings,
                *, features=None, data=None, cutoff=None,
                spark: SparkOptions | str | None = "local[*]", stage: Location | None = None,
                loads=None) -> BatchSummary:
    """Score on Spark and write ``out`` (a local path; publishing it elsewhere is the caller's).

    ``features`` or ``data``: paths or URIs every executor can read. ``stage``: where the
    executors write their scored rows (default: a hidden folder beside ``out``; on a cluster,
    storage every executor and the driver see). ``loads``: a ``jobs.spark_ship.load_counter``.
    """
    options = SparkOptions.of(spark)
    session = spark_session(options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    stage = stage or location(out.with_name(f".{out.name}.spark.tmp"))
    features = location(features) if features is not None else None
    frame, fingerprint, cutoff_day = _input_frame(session, model, settings, features, data,
                                                   cutoff, options)
    if config.id_column not in frame.columns:
        raise BatchError(f"the input has no {config.id_column!r} column")
    frame = _count_copies(frame, config.id_column)
    archive, digest = ship_model(session.sparkContext, model)
    fn, schema = _score_partition(archive, digest, model.name, model.version, core, config,
                                  cutoff_day, loads)
    remove_tree(stage)
    master = session.sparkContext.master
    try:
        started = time.perf_counter()
        with spark_errors(f"the Spark scoring job on {master}"):
            frame.mapInPandas(fn, schema=schema).write.mode("overwrite").parquet(stage.spark_uri())
        staged_at = time.perf_counter()
        with local_copy(stage) as staged:
            summary = _collect_and_finish(model, core, staged, out, config, fingerprint,
                                          core.catalogue.ids)
        log.info("Spark scoring on %s: %.1f s on the executors (features and scores, staged), "
                 "%.1f s on the driver (offers over the whole base, output)", master,
                 staged_at - started, time.perf_counter() - staged_at)
        return summary
    finally:
        remove_stage(session.sparkContext, stage)


def remove_stage(sc, stage: Location, timeout: float = IDLE_WAIT) -> None:
    """Remove the stage once no executor runs a task (up to ``timeout``). After a failure Spark
    kills the job's other tasks asynchronously, and after a lost executor the tasks of the stage
    attempt it gave up on run on; each still writes under the stage (Hadoop makes the folders it
    writes into), so removed before they end, the stage would come back or survive. Another
    job's tasks on the same session also delay it (up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while _tasks_running(sc):
        if time.monotonic() > deadline:
            log.warning("the session's executors still ran tasks (this job's or another's) %.0f s "
                        "after the scoring job; removing its stage %s anyway (a late task may "
                        "write there again; the next job on this output clears it)", timeout, stage)
            break
        time.sleep(0.1)
    remove_tree(stage)


def _tasks_running(sc) -> bool:
    """Whether an executor runs a task; False when Spark cannot say (its driver gone): the stage
    is removed then, and the job's own error is not hidden behind this one."""
    try:
        return any(e.numRunningTasks for e in sc.statusTracker().getExecutorInfos())
    except Exception as exc:  # noqa: BLE001 - Py4J's errors when the JVM is gone, and any other
        log.debug("cannot ask Spark for running tasks (%s); removing the stage now", exc)
        return False


def _count_copies(frame, id_column: str):
    """Each row with the number of rows sharing its (customer, cutoff) key: every copy of a
    duplicated key is quarantined, as in the local engine, whatever the partitioning."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = [F.col(f"`{id_column}`")]
    if CUTOFF in frame.columns:
        key.append(F.to_date(F.col(CUTOFF)))
    return frame.withColumn(COPIES, F.count(F.lit(1)).over(Window.partitionBy(*key)))


def _collect_and_finish(model, core, stage: Path, out: Path, config: BatchConfig,
                        fingerprint: str, offer_ids: list[str]) -> BatchSummary:
    """The single-machine step: gather every row's offer values, allocate, write atomically."""
    scored = ScoredRows(stage, core.catalogue.costs, fingerprint,
                        datetime.now(UTC).replace(microsecond=0).isoformat())
    for batch in staged_parts(stage, config.chunk_size):
        pdf = batch.to_pandas()
        scored.summary.rows_in += len(pdf)
        bad = pdf["quarantine_reason"] != ""
        if bad.any():
            scored.quarantine.append(pdf.loc[bad, [config.id_column, CUTOFF, "quarantine_reason"]]
                                     .rename(columns={"quarantine_reason": "reason"}))
        good = pdf[~bad]
        scored.add(good["churn_probability"].to_numpy(float),
                   good[[f"net_{o}" for o in offer_ids]].to_numpy(float),
                   good[[f"red_{o}" for o in offer_ids]].to_numpy(float))
    summary = finish(model, core, scored, out, config)
    log.info("spark scoring: %s", json.dumps(summary.as_dict()))
    return summary

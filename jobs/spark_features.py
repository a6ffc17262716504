"""The same feature code on Apache Spark: customers are hashed into buckets, each bucket's rows of
every table go to one pandas call of ``features.stream.build_partition`` (the function the local
engine runs on each customer partition; ``groupBy(bucket).applyInPandas``). A source in the
partitioned layout (``features.partitions``) keeps its partitions: a part file is a bucket.
The driver does the local engine's first pass (``scan_source``: the contract, the data's end, the
event vocabulary and the BTYD fits), one partition in memory at a time.

``churn features build --engine spark`` builds a partitioned source on this machine (or a shared
file system) with ``jobs.spark_build`` instead: the local engine's own passes with each part's
work on the executors, written part by part (no long frame, no shuffle, no Arrow round trip, no
feature set collected on the driver). This path stays for what that one cannot do: the scoring
job's frame (``spark_feature_frame``, scored on the executors), a source of one part (Spark
buckets its customers over the executors) and a remote source (Spark reads it where it is).

A customer's features depend only on that customer's events, so a bucket gives the same numbers as
the whole base (tests/features/test_features.py proves it on pandas, tests/test_spark.py on Spark).
The contract checks run inside each bucket too: all of a customer's rows are in the same bucket.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import uuid
from pathlib import Path

import pandas as pd

from features.build import FeatureSet
from features.config import FeatureConfig, LabelConfig
from features.contract import TABLES, ContractError, Problem
from features.crm import CrmData
from features.errors import BadInput
from features.partitions import is_partitioned
from features.progress import polled
from features.stream import SourceScan, build_partition, scan_source
from jobs.spark_session import SparkOptions, spark_errors, spark_session
from jobs.storage import Location, list_files, local_copy, location

log = logging.getLogger(__name__)

CUSTOMERS_PER_BUCKET = 50_000  # one pandas call per bucket holds all its customers' events

__all__ = ["spark_session", "spark_feature_frame", "spark_feature_set", "to_spark_pandas"]


def bucket_count(customers: int, cores: int, buckets: int | None = None) -> int:
    """Customer buckets: as asked, else one per 50,000 customers and at least two per core."""
    if buckets is not None:
        if buckets < 1:
            raise BadInput("--spark-buckets must be at least 1")
        return buckets
    return max(2 * cores, math.ceil(customers / CUSTOMERS_PER_BUCKET), 1)


@contextlib.contextmanager
def spark_task_progress(session, desc: str):
    """A bar over the tasks of the Spark jobs the body starts (in its own job group), polled from
    Spark's status tracker: the buckets are computed on the executors, the bar follows them."""
    sc = session.sparkContext
    group = f"churn-{uuid.uuid4().hex[:12]}"
    sc.setJobGroup(group, desc)

    def tasks() -> tuple[int, int] | None:
        tracker = sc.statusTracker()
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job is not None else ():
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    done, total = done + stage.numCompletedTasks, total + stage.numTasks
        return (done, total) if total else None

    try:
        with polled(tasks, desc, unit="task"):
            yield
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)


def _spark_type(dtype) -> str:
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "double"
    return "string"


def _long_frame(spark, source: Location, buckets: int, parts: list[str] | None = None):
    """Every table's rows in one Spark frame: a ``_table`` column, a ``_bucket`` per customer
    (the customer's part file when ``parts`` names them, else a hash of its id).

    Columns of the same Spark type in different tables share one physical column (a slot:
    ``timestamp_0``, ``double_1``, ...), so the frame is as wide as the widest table per type,
    not as all tables together (15 columns instead of 42 for the sample CRM): the shuffle and the
    Arrow transfer to pandas carry fewer empty cells."""
    from pyspark.sql import functions as F

    files = {}
    if parts is not None:
        for name in TABLES:
            folder = source.child(name)
            if folder.exists() and folder.is_dir():
                kinds = {f.suffix for f in list_files(folder) if f.suffix in (".parquet", ".csv")}
                files[name] = (folder, kinds.pop() if kinds else ".parquet")
        index = F.create_map(*[x for i, n in enumerate(parts) for x in (F.lit(n), F.lit(i))])
        bucket = F.element_at(index, F.regexp_extract(F.input_file_name(),
                                                      r"([^/.]+)\.[^/.]+$", 1))
    else:
        for f in list_files(source):
            if Path(f.name).stem in TABLES and f.suffix in (".parquet", ".csv"):
                files.setdefault(Path(f.name).stem, (f, f.suffix))
        bucket = F.pmod(F.hash(F.col("customer_id")), F.lit(buckets))
    frames, columns = [], {}
    for name in TABLES:
        if name not in files:
            continue
        f, suffix = files[name]
        df = (spark.read.parquet(f.spark_uri()) if suffix == ".parquet"
              else spark.read.option("header", True).csv(f.spark_uri()))
        df = df.withColumn("customer_id", F.col("customer_id").cast("string"))
        used: dict[str, int] = {}
        columns[name] = {}
        for field in df.schema.fields:
            kind = re.sub(r"\W", "_", field.dataType.simpleString())
            columns[name][field.name] = f"{kind}_{used.get(kind, 0)}"
            used[kind] = used.get(kind, 0) + 1
        df = df.select([F.col(c).alias(slot) for c, slot in columns[name].items()]
                       + [F.lit(name).alias("_table"), bucket.alias("_bucket")])
        frames.append(df)
    long = frames[0]
    for df in frames[1:]:
        long = long.unionByName(df, allowMissingColumns=True)
    return long, columns


def _bucket_tables(pdf: pd.DataFrame, columns: dict[str, dict[str, str]]
                   ) -> dict[str, pd.DataFrame]:
    tables = {}
    for name, slots in columns.items():
        part = pdf[pdf["_table"] == name]
        frame = pd.DataFrame({c: part[slot].to_numpy() for c, slot in slots.items()})
        tables[name] = frame.replace({None: pd.NA}) if len(frame) else frame
    return tables


def to_spark_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    """pandas 3 string columns (Arrow-backed) as plain objects, which Spark's Arrow path takes."""
    for c in frame.columns:
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
                or pd.api.types.is_datetime64_any_dtype(frame[c])):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


def _scan_on_driver(source: Location, cutoffs, features: FeatureConfig, horizon_days: int,
                    as_of=None) -> SourceScan:
    """The local engine's first pass on the driver (a folder is the only source Spark reads),
    with the first customers of the first partition (``probe``: to find the output's columns)."""
    with local_copy(source) as path:
        if not path.is_dir():
            raise ContractError([Problem(source.uri, None, "the Spark engine reads a folder of "
                                         "Parquet/CSV files (not a DuckDB file)")])
        scan = scan_source(path, cutoffs, features, horizon_days, as_of)
        from features.contract import validate

        first = CrmData.from_tables(validate(scan.parts[0].read(), as_of=scan.as_of,
                                             now=scan.now))
        scan.cached = None
        scan.probe = first.subset(first.customers["customer_id"].head(50))
        if source.local is None:  # a download: gone after this block
            scan.fingerprinted = scan.fingerprint()
    return scan


def spark_feature_frame(source: str | Path | Location, cutoffs: list[pd.Timestamp],
                        features: FeatureConfig, labels: LabelConfig,
                        population_only: bool = True,
                        spark: SparkOptions | str | None = "local[*]", as_of=None):
    """A Spark DataFrame of (customer_id, cutoff, features..., label), built bucket by bucket,
    and the driver's scan of the source (``SourceScan``: its ``fingerprint()`` names the data).
    ``as_of`` (the declared extraction time) bounds the timestamps and is the data's end for the
    labels, as in the local build."""
    options = SparkOptions.of(spark)
    session = spark_session(options)
    source = location(source)
    scan = _scan_on_driver(source, cutoffs, features, labels.horizon_days, as_of)
    config, data_end, now, as_of = scan.config, scan.data_end, scan.now, scan.as_of
    probe = build_partition(scan.probe.tables(), cutoffs, config, labels, False, data_end,
                            checked=True).frame
    schema = ", ".join(f"`{c}` {_spark_type(probe[c].dtype)}" for c in probe.columns)
    order = list(probe.columns)
    parts = ([p.name for p in scan.parts] if source.local is not None
             and is_partitioned(source.local) else None)
    buckets = len(parts) if parts is not None else bucket_count(
        scan.customers, session.sparkContext.defaultParallelism, options.buckets)
    long, columns = _long_frame(session, source, buckets, parts)

    def build(pdf: pd.DataFrame) -> pd.DataFrame:  # the driver's scan checked these rows
        frame = build_partition(_bucket_tables(pdf, columns), cutoffs, config, labels,
                                population_only, data_end, as_of, now, scanned=True).frame
        return to_spark_pandas(frame.reindex(columns=order))

    log.info("Spark feature build: %d customers in %d buckets%s", scan.customers, buckets,
             " (the source's partitions)" if parts is not None else "")
    # as many partitions as buckets (not spark.sql.shuffle.partitions): the parallelism follows
    # --spark-buckets; the grouping reuses this partitioning, no second shuffle
    return (long.repartition(buckets, "_bucket").groupBy("_bucket")
            .applyInPandas(build, schema=schema), scan)


def spark_feature_set(source, cutoffs, features: FeatureConfig, labels: LabelConfig,
                      population_only: bool = True,
                      spark: SparkOptions | str | None = "local[*]", as_of=None) -> FeatureSet:
    """Like ``build_feature_set`` but computed on Spark, collected as one FeatureSet."""
    frame, scan = spark_feature_frame(source, cutoffs, features, labels, population_only, spark,
                                      as_of)
    specs = build_partition(scan.probe.tables(), cutoffs, scan.config, labels, False,
                            scan.data_end, checked=True).specs
    with spark_errors("the Spark feature build"), spark_task_progress(
            frame.sparkSession, "building features on Spark"):
        result = frame.toPandas()
    result = result.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    for spec in specs:
        if spec.kind == "category":
            result[spec.name] = result[spec.name].astype("str")
    result["customer_id"] = result["customer_id"].astype("str")
    return FeatureSet(result, specs, labels, scan.config, scan.data_end)

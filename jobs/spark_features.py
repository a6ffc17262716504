"""The same feature code on Apache Spark: customers are hashed into buckets, each bucket's rows of
every table go to one pandas call of ``build_feature_set`` (``groupBy(bucket).applyInPandas``).

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

from features.build import FeatureSet, build_feature_set, resolve_config
from features.config import FeatureConfig, LabelConfig
from features.contract import TABLES, ContractError, Problem, parse_as_of, validate
from features.crm import CrmData
from features.errors import BadInput
from features.io import read_tables
from features.progress import polled
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


def _long_frame(spark, source: Location, buckets: int):
    """Every table's rows in one Spark frame: a ``_table`` column, a ``_bucket`` per customer.

    Columns of the same Spark type in different tables share one physical column (a slot:
    ``timestamp_0``, ``double_1``, ...), so the frame is as wide as the widest table per type,
    not as all tables together (15 columns instead of 42 for the sample CRM): the shuffle and the
    Arrow transfer to pandas carry fewer empty cells."""
    from pyspark.sql import functions as F

    files = {}
    for f in list_files(source):
        if Path(f.name).stem in TABLES and f.suffix in (".parquet", ".csv"):
            files.setdefault(Path(f.name).stem, f)
    frames, columns = [], {}
    for name in TABLES:
        if name not in files:
            continue
        f = files[name]
        df = (spark.read.parquet(f.spark_uri()) if f.suffix == ".parquet"
              else spark.read.option("header", True).csv(f.spark_uri()))
        df = df.withColumn("customer_id", F.col("customer_id").cast("string"))
        used: dict[str, int] = {}
        columns[name] = {}
        for field in df.schema.fields:
            kind = re.sub(r"\W", "_", field.dataType.simpleString())
            columns[name][field.name] = f"{kind}_{used.get(kind, 0)}"
            used[kind] = used.get(kind, 0) + 1
        df = df.select([F.col(c).alias(slot) for c, slot in columns[name].items()]
                       + [F.lit(name).alias("_table"),
                          F.pmod(F.hash(F.col("customer_id")), F.lit(buckets)).alias("_bucket")])
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


def _read_on_driver(source: Location, as_of=None) -> CrmData:
    """The whole source read and checked on the driver (the contract, the data's end, the event
    vocabulary and the fingerprint come from it); a folder is the only source Spark reads."""
    with local_copy(source) as path:
        if not path.is_dir():
            raise ContractError([Problem(source.uri, None, "the Spark engine reads a folder of "
                                         "Parquet/CSV files (not a DuckDB file)")])
        return CrmData.from_tables(validate(read_tables(path), as_of=as_of))


def spark_feature_frame(source: str | Path | Location, cutoffs: list[pd.Timestamp],
                        features: FeatureConfig, labels: LabelConfig,
                        population_only: bool = True,
                        spark: SparkOptions | str | None = "local[*]", as_of=None):
    """A Spark DataFrame of (customer_id, cutoff, features..., label), built bucket by bucket,
    and the source as read on the driver. ``as_of`` (the declared extraction time) bounds the
    timestamps and is the data's end for the labels, as in the local build."""
    options = SparkOptions.of(spark)
    session = spark_session(options)
    source = location(source)
    as_of = parse_as_of(as_of)
    local = _read_on_driver(source, as_of)
    data_end = as_of if as_of is not None else local.data_end
    features = resolve_config(local, cutoffs, features)  # one vocabulary for every bucket
    probe_ids = local.customers["customer_id"].head(50)
    probe = build_feature_set(local.subset(probe_ids), cutoffs, features, labels,
                              population_only=False, data_end=data_end).frame
    schema = ", ".join(f"`{c}` {_spark_type(probe[c].dtype)}" for c in probe.columns)
    order = list(probe.columns)
    buckets = bucket_count(len(local.customers), session.sparkContext.defaultParallelism,
                           options.buckets)
    long, columns = _long_frame(session, source, buckets)

    def build(pdf: pd.DataFrame) -> pd.DataFrame:
        crm = CrmData.from_tables(validate(_bucket_tables(pdf, columns), as_of=as_of))
        frame = build_feature_set(crm, cutoffs, features, labels, population_only,
                                  data_end=data_end).frame
        return to_spark_pandas(frame.reindex(columns=order))

    log.info("Spark feature build: %d customers in %d buckets", len(local.customers), buckets)
    # as many partitions as buckets (not spark.sql.shuffle.partitions): the parallelism follows
    # --spark-buckets; the grouping reuses this partitioning, no second shuffle
    return (long.repartition(buckets, "_bucket").groupBy("_bucket")
            .applyInPandas(build, schema=schema), local)


def spark_feature_set(source, cutoffs, features: FeatureConfig, labels: LabelConfig,
                      population_only: bool = True,
                      spark: SparkOptions | str | None = "local[*]", as_of=None) -> FeatureSet:
    """Like ``build_feature_set`` but computed on Spark, collected as one FeatureSet."""
    frame, local = spark_feature_frame(source, cutoffs, features, labels, population_only, spark,
                                       as_of)
    features = resolve_config(local, cutoffs, features)
    specs = build_feature_set(local.subset(local.customers["customer_id"].head(50)), cutoffs,
                              features, labels, population_only=False).specs
    with spark_errors("the Spark feature build"), spark_task_progress(
            frame.sparkSession, "building features on Spark"):
        result = frame.toPandas()
    result = result.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    for spec in specs:
        if spec.kind == "category":
            result[spec.name] = result[spec.name].astype("str")
    result["customer_id"] = result["customer_id"].astype("str")
    as_of = parse_as_of(as_of)
    return FeatureSet(result, specs, labels, features,
                      as_of if as_of is not None else local.data_end)

"""The same feature code on Apache Spark: customers are hashed into buckets, each bucket's rows of
every table go to one pandas call of ``build_feature_set`` (``groupBy(bucket).applyInPandas``).

A customer's features depend only on that customer's events, so a bucket gives the same numbers as
the whole base (tests/features/test_features.py proves it on pandas, tests/test_spark.py on Spark).
The contract checks run inside each bucket too: all of a customer's rows are in the same bucket.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pandas as pd

from features.build import FeatureSet, build_feature_set, resolve_config
from features.config import FeatureConfig, LabelConfig
from features.contract import TABLES, validate
from features.crm import CrmData
from features.io import read_tables

log = logging.getLogger(__name__)

_SESSION = None


def spark_session(master: str = "local[*]", app_name: str = "churn"):
    """One Spark session per process (starting one takes seconds)."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    _SESSION = (SparkSession.builder.master(master).appName(app_name)
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.shuffle.partitions", "8")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.memory", "2g")
                .getOrCreate())
    _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


def _spark_type(dtype) -> str:
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "double"
    return "string"


def _long_frame(spark, source: Path, buckets: int):
    """Every table's rows in one Spark frame: a ``_table`` column, a ``_bucket`` per customer."""
    from pyspark.sql import functions as F

    path = Path(source)
    frames, columns = [], {}
    for name in TABLES:
        files = [f for f in (path / f"{name}.parquet", path / f"{name}.csv") if f.exists()]
        if not files:
            continue
        f = files[0]
        df = (spark.read.parquet(str(f)) if f.suffix == ".parquet"
              else spark.read.option("header", True).csv(str(f)))
        df = df.withColumn("customer_id", F.col("customer_id").cast("string"))
        columns[name] = df.columns
        # table-prefixed names: tables that share a column name never clash in the union
        df = df.select([F.col(c).alias(f"{name}__{c}") for c in df.columns]
                       + [F.lit(name).alias("_table"),
                          F.pmod(F.hash(F.col("customer_id")), F.lit(buckets)).alias("_bucket")])
        frames.append(df)
    long = frames[0]
    for df in frames[1:]:
        long = long.unionByName(df, allowMissingColumns=True)
    return long, columns


def _bucket_tables(pdf: pd.DataFrame, columns: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    tables = {}
    for name, cols in columns.items():
        part = pdf[pdf["_table"] == name]
        frame = pd.DataFrame({c: part[f"{name}__{c}"].to_numpy() for c in cols})
        tables[name] = frame.replace({None: pd.NA}) if len(frame) else frame
    return tables


def to_spark_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    """pandas 3 string columns (Arrow-backed) as plain objects, which Spark's Arrow path takes."""
    for c in frame.columns:
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
                or pd.api.types.is_datetime64_any_dtype(frame[c])):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


def spark_feature_frame(source: str | Path, cutoffs: list[pd.Timestamp], features: FeatureConfig,
                        labels: LabelConfig, population_only: bool = True, buckets: int = 8,
                        master: str = "local[*]"):
    """A Spark DataFrame of (customer_id, cutoff, features..., label), built bucket by bucket."""
    spark = spark_session(master)
    local = CrmData.from_tables(validate(read_tables(source)))  # schema and data end, locally
    data_end = local.data_end
    features = resolve_config(local, cutoffs, features)  # one vocabulary for every bucket
    probe_ids = local.customers["customer_id"].head(50)
    probe = build_feature_set(local.subset(probe_ids), cutoffs, features, labels,
                              population_only=False, data_end=data_end).frame
    schema = ", ".join(f"`{c}` {_spark_type(probe[c].dtype)}" for c in probe.columns)
    order = list(probe.columns)
    long, columns = _long_frame(spark, Path(source), buckets)

    def build(pdf: pd.DataFrame) -> pd.DataFrame:
        crm = CrmData.from_tables(validate(_bucket_tables(pdf, columns)))
        frame = build_feature_set(crm, cutoffs, features, labels, population_only,
                                  data_end=data_end).frame
        return to_spark_pandas(frame.reindex(columns=order))

    return long.groupBy("_bucket").applyInPandas(build, schema=schema), local


def spark_feature_set(source, cutoffs, features: FeatureConfig, labels: LabelConfig,
                      population_only: bool = True, buckets: int = 8,
                      master: str = "local[*]") -> FeatureSet:
    """Like ``build_feature_set`` but computed on Spark, collected as one FeatureSet."""
    frame, local = spark_feature_frame(source, cutoffs, features, labels, population_only,
                                       buckets, master)
    features = resolve_config(local, cutoffs, features)
    specs = build_feature_set(local.subset(local.customers["customer_id"].head(50)), cutoffs,
                              features, labels, population_only=False).specs
    result = frame.toPandas().sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    for spec in specs:
        if spec.kind == "category":
            result[spec.name] = result[spec.name].astype("str")
    result["customer_id"] = result["customer_id"].astype("str")
    return FeatureSet(result, specs, labels, features)

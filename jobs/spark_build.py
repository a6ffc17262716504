"""The Spark feature build of a source the executors read as files: the local engine's streamed
build (``features.stream.build_to_parquet``: the glance and BTYD pass, then each part checked and
built, appended to the output in the parts' order) with its per-part work done on the executors
(``jobs.spark_pool``). The same code on the same partitions as the local engine, so the same
checks, the same errors and the same output file; the driver holds a few parts' results at a
time, never the whole feature set.

A source the executors cannot read as files (a remote URI, downloaded to the driver) is built by
``jobs.spark_features.spark_feature_set`` (Spark reads the tables itself).
"""

from __future__ import annotations

import logging
from pathlib import Path

from features.config import FeatureConfig, LabelConfig
from features.stream import StreamedBuild, build_to_parquet
from jobs.spark_pool import spark_pool
from jobs.spark_session import SparkOptions, spark_session
from jobs.storage import Location, location

log = logging.getLogger(__name__)


def reads_as_files(source: str | Path | Location) -> bool:
    """Whether the executors can read ``source``'s part files where the driver finds them (a
    path or file:// URI on this machine: on a cluster, a shared file system)."""
    return location(source).local is not None


def spark_build_to_parquet(source: str | Path | Location, cutoffs: list, features: FeatureConfig,
                           labels: LabelConfig, out: str | Path, population_only: bool = True,
                           spark: SparkOptions | str | None = "local[*]", as_of=None,
                           in_flight: int | None = None) -> StreamedBuild:
    """``build_to_parquet`` with each part's pass run on Spark's executors, ``in_flight`` parts at
    a time (default: the session's cores); the output and its hidden spool in ``out``'s folder."""
    options = SparkOptions.of(spark)
    if options.buckets is not None:
        log.info("--spark-buckets is not used: the source's partitions are the Spark tasks")
    session = spark_session(options)
    path = location(source).local
    with spark_pool(session, in_flight) as pool:
        log.info("Spark feature build of %s on %s, %d parts at a time", path,
                 session.sparkContext.master, pool.workers)
        return build_to_parquet(path, cutoffs, features, labels, out, population_only, as_of,
                                pool=pool)

"""The Spark feature build of a source the executors read as files: the local engine's streamed
build (``features.stream.build_to_parquet``: the glance and BTYD pass, then each part checked and
built, appended to the output in the parts' order) with its per-part work done on the executors
(``jobs.spark_pool``). The same code on the same partitions as the local engine, so the same
checks, the same errors and the same output file; the driver holds a few parts' results at a
time, never the whole feature set.

A source of one part (a folder of one file per table, a DuckDB file) or a remote one (a URI that
only the driver downloads) is built by ``jobs.spark_features.spark_feature_set``: Spark reads its
tables and buckets its customers over the executors (one part would be one task here).
"""

from __future__ import annotations

import logging
from pathlib import Path

from features.config import FeatureConfig, LabelConfig
from features.partitions import is_partitioned, partitions
from features.stream import StreamedBuild, build_to_parquet
from jobs.spark_pool import spark_pool
from jobs.spark_session import SparkOptions, spark_session
from jobs.storage import Location, location

log = logging.getLogger(__name__)


def builds_on_parts(source: str | Path | Location, out: str | Path | Location) -> bool:
    """Whether ``source`` is built here: a folder of part files on this machine (a path or a
    file:// URI; on a cluster the executors must see it at the same path: a shared file system),
    written to an ``out`` on this machine too (the executors leave their results, and read the
    BTYD spool, beside it). A source of one part would be one task (the driver's scan already
    holds it whole), and a remote source or output is on no path the executors share: Spark
    buckets those customers itself (``jobs.spark_features``)."""
    local = location(source).local
    return local is not None and is_partitioned(local) and location(out).local is not None


def spark_build_to_parquet(source: str | Path | Location, cutoffs: list, features: FeatureConfig,
                           labels: LabelConfig, out: str | Path, population_only: bool = True,
                           spark: SparkOptions | str | None = "local[*]", as_of=None,
                           in_flight: int | None = None) -> StreamedBuild:
    """``build_to_parquet`` with each part's pass run on Spark's executors, ``in_flight`` parts at
    a time (default: the session's cores) and one more queued (``SparkPool``). The output, the
    BTYD spool and the parts' results on their way to the driver (``spark_pool``'s spill) go to
    ``out``'s folder, which the executors must see (the spill and spool are hidden and removed at the end)."""
    options = SparkOptions.of(spark)
    if options.buckets is not None:  # set by the user (default None): say that it is ignored
        log.warning("--spark-buckets %d is not used: %s is partitioned, and its %d parts are the "
                    "Spark tasks (to change them, write the source with other part sizes)",
                    options.buckets, location(source).local, len(partitions(location(source).local)))
    session = spark_session(options)
    path = location(source).local
    with spark_pool(session, in_flight, spill_beside=Path(out).parent) as pool:
        log.info("Spark feature build of %s on %s, %d parts at a time", path,
                 session.sparkContext.master, pool.workers)
        return build_to_parquet(path, cutoffs, features, labels, out, population_only, as_of,
                                pool=pool)

"""The feature build one customer partition at a time: peak memory set by the partition, not by
the number of customers.

Two passes over the partitions (``features.partitions``), each in the workers of one
``features.parallel.PartPool`` (one per core by default). The first (``features.scan``) keeps
what the whole base decides: the data's end (for the labels), the event vocabulary and the BTYD
fits at each cutoff (from every customer's purchase summary); it reads only the columns that
these need. The second reads each part whole, checks it against the contract and builds it with
``build_partition``, the function Spark runs on each bucket (``jobs.spark_features``), and
appends its rows to the output file in the parts' order, whatever the number of workers. A
breach found by either pass stops the build, and every part is then checked
(``features.scan.scan_source``) so that the error names every problem of every part; nothing is
written. (A source of one part is checked in the first pass and built from the tables it read.) A
customer's features depend only on that customer's events and on what the first pass fixed, so
the rows are those of the in-memory build; they come partition by partition (each partition's
rows in cutoff order, then customer order).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.build import (
    LABEL,
    FeatureSet,
    PreparedCrm,
    build_feature_set,
    feature_metadata,
    require_rows,
)
from features.config import FeatureConfig, LabelConfig
from features.contract import ContractError, Problem, validate
from features.crm import CrmData
from features.errors import BadInput
from features.io import write_atomic
from features.parallel import ParallelConfig, part_pool
from features.partitions import Partition
from features.pending_fits import await_fits
from features.progress import bar
from features.scan import SourceScan, Unchecked, scan_source
from features.scratch import scratch_dir
from features.spec import FeatureSpec

__all__ = ["SourceScan", "StreamedBuild", "build_partition", "build_to_parquet", "scan_source"]

log = logging.getLogger(__name__)

# text columns that the build reads as categoricals (Parquet's dictionary, not a string per row;
# they stay text for the checks): the event tables' customers (matched once per distinct id) and
# the event types (the features use their codes, ``features.events.Coded``)
CODED_COLUMNS = {"orders": ["customer_id"], "tickets": ["customer_id"],
                 "surveys": ["customer_id"], "offers": ["customer_id"],
                 "engagement": ["customer_id", "event_type"]}


def build_partition(raw: dict[str, pd.DataFrame], cutoffs: list, config: FeatureConfig,
                    labels: LabelConfig, population_only: bool, data_end, as_of=None,
                    now=None, checked: bool = False, scanned: bool = False,
                    codes: dict[str, np.ndarray] | None = None,
                    config_ready: Callable[[], FeatureConfig] | None = None) -> FeatureSet:
    """The rows of one partition of customers: its raw tables checked against the contract
    (only typed when ``scanned``: ``scan_source`` checked these files; nothing when ``checked``:
    they are typed already, ``codes`` their events' customers as ``validate`` found them), then
    features and labels with the settings (``scan_source``'s) and the data end that the whole
    base fixed. ``config_ready``: called once the tables are typed and sorted, gives the config to
    build with (``features.pending_fits.await_fits``: the BTYD fits made meanwhile)."""
    if not checked:
        codes = None if scanned else {}
        raw = validate(raw, as_of=as_of, now=now, checks=not scanned, codes=codes)
        _release()  # what the checks took
    # the raw tables go as soon as they are typed, the typed ones once sorted
    prepared = PreparedCrm(CrmData.from_tables(raw), codes)
    del raw, codes
    _release()
    if config_ready is not None:
        config = config_ready()
    return build_feature_set(prepared, cutoffs, config, labels, population_only, data_end=data_end)


@dataclass
class StreamedBuild:
    """What was written: rows, the features, and per cutoff the customers and known labels."""

    path: Path
    rows: int
    specs: list[FeatureSpec]
    config: FeatureConfig
    data_end: pd.Timestamp
    per_cutoff: dict[pd.Timestamp, list[float]] = field(default_factory=dict)  # [rows, labelled,
    # churned]


def build_to_parquet(source: str | Path, cutoffs: list, features: FeatureConfig,
                     labels: LabelConfig, out: str | Path, population_only: bool = True,
                     as_of=None, workers: int | None = None, pool=None) -> StreamedBuild:
    """Features and labels of every partition of ``source`` written to ``out`` (Parquet, the
    layout ``write_feature_set`` writes), ``workers`` partitions at a time (default one per core,
    ``features.parallel.ParallelConfig``; 1 = in this process), each in memory only while it is
    built. The rows come in partition order whatever the number of workers. Nothing is written
    when the data breaks the contract or no customer is in any population. ``pool``: another
    engine's ``PartPool`` (the same ``map``; ``jobs.spark_pool``) instead of local workers."""
    if not cutoffs:
        raise BadInput("at least one cutoff is needed")
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise BadInput(f"feature sets are written as .parquet, got {out.name}")
    workers = ParallelConfig().workers if workers is None else workers
    with nullcontext(pool) if pool is not None else part_pool(workers) as pool:
        try:
            # with workers, the BTYD fits are made while they read their first parts
            scan = scan_source(source, cutoffs, features, labels.horizon_days, as_of, pool,
                               checks=False, spool_dir=out.parent,  # not TMPDIR: may be RAM
                               defer_fits=pool.workers > 1)
            try:
                result = _write_parts(scan, cutoffs, labels, out, population_only, pool)
            finally:
                if scan.pending_fits is not None:
                    scan.pending_fits.cleanup()
        except Unchecked as exc:
            log.info("%s: checking every part to name the problems", exc)
            scan_source(source, [], features, as_of=as_of, pool=pool)  # raises ContractError
            if exc.problems:  # not found again (cannot happen: the same checks)
                raise ContractError(exc.problems) from exc
            raise
    log.info("wrote %s: %d rows from %d partitions (%d at a time)", out, result.rows,
             len(scan.parts), min(pool.workers, len(scan.parts)))
    return result


def _write_parts(scan: SourceScan, cutoffs: list, labels: LabelConfig, out: Path,
                 population_only: bool, pool) -> StreamedBuild:
    """The second pass: each part built in ``pool`` and appended, in the parts' order."""
    result = StreamedBuild(out, 0, [], scan.config, scan.data_end)
    cached, codes, scan.cached, scan.cached_codes = scan.cached, scan.cached_codes, None, None
    handoff = scratch_dir(out.parent) if pool.workers > 1 and len(scan.parts) > 1 else None
    pending = scan.pending_fits  # only with a handoff folder (several workers and parts)
    fits_at = None if pending is None else Path(handoff.name) / "btyd-fits.pkl"
    jobs = [_BuildJob(part, cutoffs, scan.config, labels, population_only, scan.data_end,
                      scan.as_of, scan.now, not scan.checked, cached, codes,
                      None if handoff is None else Path(handoff.name) / f"{i:06d}.arrow",
                      fits_at)
            for i, part in enumerate(scan.parts)]
    del cached, codes

    def write(tmp: Path) -> None:
        writer = schema = None
        try:
            with closing(pool.map(_build_part, jobs, [p.name for p in scan.parts])) as built:
                for part in bar(built, total=len(jobs), desc="building features", unit="part"):
                    if part.problems:
                        raise Unchecked(f"part {part.name} breaks the contract", part.problems)
                    table = part.table if part.handoff is None else _read_handoff(part.handoff)
                    if writer is None:
                        if pending is not None:  # done: a part's features needed them
                            scan.config = result.config = scan.config.model_copy(
                                update={"btyd_fits": pending.fits()})
                        result.specs = part.specs
                        schema = table.schema.with_metadata(_metadata(
                            table.schema, part.specs, labels, scan.config, scan.data_end))
                        writer = pq.ParquetWriter(tmp, schema)
                    elif not table.schema.equals(schema, check_metadata=False):
                        table = table.cast(schema)
                    writer.write_table(table)
                    rows = table.num_rows
                    result.rows += rows
                    del table
                    if part.handoff is not None:
                        part.handoff.unlink()
                    for cutoff, counts in part.per_cutoff.items():
                        row = result.per_cutoff.setdefault(cutoff, [0, 0, 0.0])
                        for i, v in enumerate(counts):
                            row[i] += v
                    log.debug("built part %s: %d rows", part.name, rows)
        finally:
            if writer is not None:
                writer.close()
        if not result.rows:
            require_rows(FeatureSet(pd.DataFrame(), [], labels), cutoffs)

    try:
        if pending is not None:
            pending.start(fits_at)
        write_atomic(out, write)
    except BaseException as exc:  # a worker stopped waiting, or a read failed as the folder went:
        failed = None if pending is None else pending.failure()  # the fit's own error says why
        if failed is not None and failed is not exc:
            raise failed from exc
        raise
    finally:
        if pending is not None:
            pending.failure()  # the thread done before its folder goes (it may write there)
        if handoff is not None:
            handoff.cleanup()
    return result


@dataclass(frozen=True)
class _BuildJob:
    """What the second pass asks of one part (plain data: it goes to a worker process)."""

    part: Partition
    cutoffs: list
    config: FeatureConfig
    labels: LabelConfig
    population_only: bool
    data_end: pd.Timestamp
    as_of: pd.Timestamp | None
    now: pd.Timestamp
    check: bool = False  # check the part against the contract (the first pass did not)
    checked: dict[str, pd.DataFrame] | None = None  # a one-part source's tables, typed already
    codes: dict[str, np.ndarray] | None = None  # and their events' customers (``validate``'s)
    handoff: Path | None = None  # where a worker leaves the rows (not sent back through a pipe)
    fits_at: Path | None = None  # the BTYD fits still being made: wait for them here


@dataclass
class _BuiltPart:
    name: str
    table: pa.Table | None
    specs: list[FeatureSpec]
    per_cutoff: dict[pd.Timestamp, list[float]]
    problems: list[Problem] = field(default_factory=list)  # the part breaks the contract
    handoff: Path | None = None  # the rows are in this Arrow file (``table`` is None)


def _build_part(job: _BuildJob) -> _BuiltPart:
    """One part's rows as Arrow (the worker converts them, the writer only writes); or, when it
    checks the part, the part's problems."""
    try:
        fs = build_partition(job.checked if job.checked is not None else job.part.read(
                                 categorical=CODED_COLUMNS),
                             job.cutoffs, job.config, job.labels, job.population_only,
                             job.data_end, job.as_of, job.now, checked=job.checked is not None,
                             scanned=not job.check, codes=job.codes,
                             config_ready=None if job.fits_at is None else partial(
                                 await_fits, job.fits_at, job.config))
    except ContractError as exc:
        if not job.check:
            raise
        return _BuiltPart(job.part.name, None, [], {}, exc.problems)
    per_cutoff: dict = {}
    _tally(fs.frame, per_cutoff)
    table, specs = pa.Table.from_pandas(fs.frame, preserve_index=False), fs.specs
    del fs  # the frame goes before the table is sent
    if job.handoff is None:
        return _BuiltPart(job.part.name, table, specs, per_cutoff)
    # a name of this attempt's own, complete before it is named: a second attempt of the task
    # (a retry, Spark's speculation) never rewrites the file the writer is reading
    path = job.handoff.with_name(f"{job.handoff.stem}.{uuid.uuid4().hex[:12]}.arrow")
    write_atomic(path, partial(_write_arrow, table), mkdir=False)  # the caller may remove the folder
    return _BuiltPart(job.part.name, None, specs, per_cutoff, handoff=path)


def _write_arrow(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)


def _read_handoff(path: Path) -> pa.Table:
    """A worker's rows, mapped from the file it wrote (pickling them through the pool's pipe
    copied them three times and cost as much CPU as writing them)."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _release() -> None:
    """Give the memory that Arrow's allocator keeps after a step back to the system (it would
    stay with this process while the next step allocates)."""
    pa.default_memory_pool().release_unused()


def _metadata(schema: pa.Schema, specs, labels: LabelConfig, config: FeatureConfig,
              data_end) -> dict:
    """The first part's schema metadata (pandas') with the feature set's (``feature_table``'s)."""
    return {**(schema.metadata or {}),
            **feature_metadata(FeatureSet(pd.DataFrame(), specs, labels, config, data_end))}


def _tally(frame: pd.DataFrame, per_cutoff: dict) -> None:
    for cutoff, group in frame.groupby("cutoff"):
        known = group[LABEL].notna()
        row = per_cutoff.setdefault(pd.Timestamp(cutoff), [0, 0, 0.0])
        row[0] += len(group)
        row[1] += int(known.sum())
        row[2] += float(group.loc[known, LABEL].sum())

"""The first pass of the streamed feature build: every customer partition checked against the
contract, and what the whole base fixes found on the way.

``scan_source`` checks each part (``features.partitions``) on its own, in a worker of a
``features.parallel.PartPool`` when there are several, and gathers what the whole base decides:
the data's end (for the labels), the event vocabulary and the BTYD fits at each cutoff (from every
customer's purchase summary, joined in the parts' order); then the ids that must be unique across
parts. Any breach raises, with all problems of all parts, before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.btyd import BtydConfig, PurchaseSummary, summarise
from features.config import FeatureConfig
from features.contract import ContractError, Problem, parse_as_of, utc_now, validate
from features.crm import CrmData
from features.events import SortedEvents
from features.families.activity import vocabulary_from_counts
from features.families.btyd import fit_btyd_summary
from features.io import QUIET_BEFORE_AS_OF
from features.parallel import PartPool
from features.partitions import (
    UNIQUE,
    Partition,
    cross_partition_problems,
    id_range,
    overlapping,
    partitions,
)
from features.progress import bar

log = logging.getLogger(__name__)


@dataclass
class SourceScan:
    """What the first pass found: the parts, the whole base's settings and the data's end."""

    parts: list[Partition]
    config: FeatureConfig
    data_end: pd.Timestamp
    customers: int
    now: pd.Timestamp
    as_of: pd.Timestamp | None
    cached: dict[str, pd.DataFrame] | None = None  # the checked tables of a one-part source
    rows: dict[str, int] = field(default_factory=dict)  # rows of each table, all parts
    latest_event: pd.Timestamp | None = None
    probe: CrmData | None = None  # a few customers, for engines that need the columns up front

    fingerprinted: str | None = None  # set when the parts will not be there to read again

    def fingerprint(self) -> str:
        """A content hash of every table of every part (rows in order; reads the parts again).
        For a one-part source it is ``CrmData.fingerprint`` of the whole source."""
        if self.fingerprinted is not None:
            return self.fingerprinted
        digest = hashlib.sha256()
        for part in self.parts:
            tables = validate(part.read(), as_of=self.as_of, now=self.now)
            CrmData.from_tables(tables).update_digest(digest)
        return digest.hexdigest()[:16]


def scan_source(source: str | Path, cutoffs: list, config: FeatureConfig,
                horizon_days: int | None = None, as_of=None,
                pool: PartPool | None = None) -> SourceScan:
    """Check every part against the contract (all problems of all parts, then the ids that span
    parts) and fix the whole base's vocabulary, BTYD fits and data end (no cutoffs: only the
    checks and the data end); the parts in ``pool``'s workers (default: in this process)."""
    pool = pool or PartPool(1)
    as_of, now = parse_as_of(as_of), utc_now()
    parts = partitions(source)
    cutoffs = sorted(pd.Timestamp(c) for c in cutoffs)
    fits_wanted = [] if config.btyd is None or not cutoffs else [
        c for c in cutoffs if c.isoformat() not in (config.btyd_fits or {})]
    count_types = config.event_types is None and bool(cutoffs)
    jobs = [_ScanJob(part, fits_wanted, cutoffs[-1] if count_types else None, as_of, now,
                     keep_tables=len(parts) == 1) for part in parts]
    problems: list[tuple[str, Problem]] = []
    latest: list[pd.Timestamp] = []
    signup_end: list[pd.Timestamp] = []
    types: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    summaries: dict[pd.Timestamp, list[PurchaseSummary]] = {c: [] for c in fits_wanted}
    customers, cached, rows = 0, None, defaultdict(int)
    ranges: dict[str, list] = {table: [] for table, _, _ in UNIQUE}
    with closing(pool.map(_scan_part, jobs, [p.name for p in parts])) as scanned:
        for found in bar(scanned, total=len(parts), desc="checking the data", unit="part"):
            if found.problems:
                problems += [(found.name, p) for p in found.problems]
                continue
            customers += found.customers
            for name, n in found.rows.items():
                rows[name] += n
            for table, r in found.ranges.items():
                ranges[table].append(r)
            if found.latest is not None:
                latest.append(found.latest)
            if found.signup_end is not None:
                signup_end.append(found.signup_end)
            for name, (n, valued) in found.types.items():
                types[name][0] += n
                types[name][1] += valued
            for c in fits_wanted:
                summaries[c].append(found.summaries[c])
            cached = found.tables
            log.debug("checked part %s: %d customers", found.name, found.customers)
    if problems:
        raise ContractError(_merge(problems, len(parts)))
    if any(overlapping(r) for r in ranges.values()):
        log.info("ids of several parts overlap in range: checking them for duplicates with DuckDB")
    cross = cross_partition_problems(parts, ranges)
    if cross:
        raise ContractError(cross)
    if customers == 0:
        raise ContractError([Problem("customers", None, "the table has no rows: there are no "
                                     "customers to build features or labels for")])
    found_end = max(latest) if latest else max(signup_end)
    if as_of is not None and as_of - found_end > QUIET_BEFORE_AS_OF:
        log.warning("the latest event in %s is %s, %d days before its as-of date %s: labels count "
                    "those days as observed with no activity; check that the extract is complete",
                    source, found_end, (as_of - found_end).days, as_of)
    update: dict = {}
    if horizon_days is not None and horizon_days != config.horizon_days:
        update["horizon_days"] = horizon_days
    if config.event_types is None and types:
        update["event_types"], update["valued_event_types"] = vocabulary_from_counts(
            {k: (v[0], v[1]) for k, v in types.items()}, config)
    if fits_wanted:
        fits = dict(config.btyd_fits or {})
        wanted = [(_joined(summaries.pop(c)), config.btyd) for c in fits_wanted]
        fitter = pool if len(parts) > 1 else PartPool(1)  # no workers started for one part
        with closing(fitter.map(_fit, wanted, [f"the BTYD fit at {c.date()}"
                                               for c in fits_wanted])) as fitted:
            for c, fit in zip(fits_wanted, fitted, strict=True):  # one cutoff per worker
                fits[c.isoformat()] = fit
        update["btyd_fits"] = fits
    config = config.model_copy(update=update) if update else config
    return SourceScan(parts, config, as_of if as_of is not None else found_end, customers, now,
                      as_of, cached, dict(rows), max(latest) if latest else None)


@dataclass(frozen=True)
class _ScanJob:
    """What the first pass asks of one part (plain data: it goes to a worker process)."""

    part: Partition
    fits_wanted: list[pd.Timestamp]
    types_before: pd.Timestamp | None  # count the event types before it (None: do not)
    as_of: pd.Timestamp | None
    now: pd.Timestamp
    keep_tables: bool = False


@dataclass
class _PartScan:
    """What the first pass found in one part: its problems, or what the whole base needs of it."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    customers: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, tuple | None] = field(default_factory=dict)
    latest: pd.Timestamp | None = None
    signup_end: pd.Timestamp | None = None
    types: dict[str, tuple[int, int]] = field(default_factory=dict)
    summaries: dict[pd.Timestamp, PurchaseSummary] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] | None = None


def _scan_part(job: _ScanJob) -> _PartScan:
    """One part checked against the contract, and its share of what the whole base fixes."""
    found = _PartScan(job.part.name)
    try:
        tables = validate(job.part.read(), as_of=job.as_of, now=job.now)
    except ContractError as exc:
        found.problems = exc.problems
        return found
    crm = CrmData.from_tables(tables)
    found.customers = len(crm.customers)
    found.rows = {name: len(frame) for name, frame in tables.items()}
    found.ranges = {table: id_range(tables[table], column) for table, column, _ in UNIQUE
                    if table in tables}
    found.latest = crm.latest_event
    if len(crm.customers):
        found.signup_end = crm.customers["signup_date"].max()
    if job.types_before is not None and crm.engagement is not None:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        _count_types(crm.engagement, job.types_before, counts)
        found.types = {k: (v[0], v[1]) for k, v in counts.items()}
    if job.fits_wanted:
        index = pd.Index(crm.customers["customer_id"])
        orders = SortedEvents.from_frame(crm.orders, index, "order_ts", ["amount", "discount"])
        found.summaries = {c: _ordered(summarise(orders.before(c))) for c in job.fits_wanted}
    found.tables = tables if job.keep_tables else None
    return found


def _joined(parts: list[PurchaseSummary]) -> PurchaseSummary:
    """The parts' purchase summaries as one, in the parts' order (the whole base's)."""
    return PurchaseSummary(*(np.concatenate([getattr(p, f) for p in parts])
                             for f in ("frequency", "recency", "age", "monetary")))


def _fit(job: tuple[PurchaseSummary, BtydConfig]) -> dict:
    return fit_btyd_summary(*job).as_dict()


def _count_types(engagement: pd.DataFrame, latest_cutoff: pd.Timestamp,
                 types: dict[str, list[int]]) -> None:
    """Events of each type before the latest cutoff, and those with a value (as
    ``event_type_counts`` counts them on the whole base)."""
    before = engagement["event_ts"].to_numpy("datetime64[ns]") < latest_cutoff.to_datetime64()
    kind = engagement["event_type"][before].astype("str")
    for name, n in kind.value_counts().items():
        types[str(name)][0] += int(n)
    if "value" in engagement.columns:
        valued = engagement["value"][before].notna().to_numpy()
        for name, n in kind[valued].value_counts().items():
            types[str(name)][1] += int(n)


def _ordered(s: PurchaseSummary) -> PurchaseSummary:
    """Only the customers with an order (the fit uses no others), in the customers' order."""
    has = np.isfinite(s.frequency)
    return PurchaseSummary(s.frequency[has], s.recency[has], s.age[has], s.monetary[has])


def _merge(problems: list[tuple[str, Problem]], parts: int) -> list[Problem]:
    """The same breach in several parts as one problem: rows summed, the first examples kept,
    the parts named."""
    merged: dict[tuple, list] = {}
    for part, p in problems:
        key = (p.table, p.column, p.what)
        if key not in merged:
            merged[key] = [p, p.count, [part]]
        else:
            merged[key][1] += p.count
            merged[key][2].append(part)
    out = []
    for p, count, names in merged.values():
        where = ("" if parts == 1 else
                 f" [in {len(names)} of {parts} parts: {', '.join(names[:3])}"
                 f"{', ...' if len(names) > 3 else ''}]")
        examples = f"{p.examples} (in {names[0]})" if p.examples and parts > 1 else p.examples
        out.append(Problem(p.table, p.column, p.what + where, count, examples))
    return out

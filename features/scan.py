"""The first pass of the streamed feature build: every customer partition checked against the
contract, and what the whole base fixes found on the way.

``scan_source`` checks each part (``features.partitions``) on its own, in a worker of a
``features.parallel.PartPool`` when there are several, and gathers what the whole base decides:
the data's end (for the labels), the event vocabulary and the BTYD fits at each cutoff (from every
customer's purchase summary, spooled to files in the parts' order by ``features.btyd_spool``);
then the ids that must be unique across parts. Any breach raises, with all problems of all
parts, before anything is written.

With ``checks=False`` (the streamed build, which checks each part whole in its build pass) the
parts of a source of several are only glanced at (``features.part_scan.glance_part``: the columns
that the whole base's facts need, typed, not checked); a glance that fails raises
:class:`Unchecked`, and the caller checks every part to name the problems.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features import btyd_spool, pending_fits
from features.config import FeatureConfig
from features.contract import ContractError, Problem, parse_as_of, utc_now, validate
from features.crm import CrmData
from features.families.activity import vocabulary_from_counts
from features.io import QUIET_BEFORE_AS_OF
from features.parallel import PartPool, WorkerError
from features.part_scan import NOT_DATA_PROBLEMS, ScanJob, check_part, glance_part
from features.partitions import UNIQUE, Partition, cross_partition_problems, overlapping, partitions
from features.pending_fits import PendingFits
from features.progress import bar

log = logging.getLogger(__name__)


class Unchecked(RuntimeError):
    """Data that was not checked yet could not be used (a glance failed, or a part breaks the
    contract in the build pass): check every part to name the problems. ``problems``: those found
    so far, if any."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []

    def __reduce__(self):
        return (type(self), (str(self), self.problems))


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
    cached_codes: dict[str, np.ndarray] | None = None  # and its events' customer positions
    checked: bool = True  # every part checked against the contract (else: glanced at)
    rows: dict[str, int] = field(default_factory=dict)  # rows of each table, all parts
    latest_event: pd.Timestamp | None = None
    probe: CrmData | None = None  # a few customers, for engines that need the columns up front
    pending_fits: PendingFits | None = None  # ``defer_fits``: the BTYD fits still to make

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
                pool: PartPool | None = None, checks: bool = True,
                spool_dir: str | Path | None = None, defer_fits: bool = False) -> SourceScan:
    """Check every part against the contract (all problems of all parts, then the ids that span
    parts) and fix the whole base's vocabulary, BTYD fits and data end (no cutoffs: only the
    checks and the data end); the parts in ``pool``'s workers (default: in this process).
    ``checks=False``: glance at the parts of a source of several instead of checking them (the
    caller checks them); a source of one part is checked and its tables kept. ``spool_dir``: the
    folder in which the BTYD fits' purchase summaries are spooled (in a scratch folder,
    ``features.scratch``, removed on return or failure; default the system's temporary folder,
    ``TMPDIR``, which may be in memory: the streamed build passes its output's folder).
    ``defer_fits``: with several parts, and summaries small enough that the fit's memory does not
    matter (``features.pending_fits.OVERLAP_UP_TO``), the BTYD fits are not made here but left to
    the caller (``SourceScan.pending_fits``: made while the workers read the parts again;
    ``config`` lacks them until then)."""
    pool = pool or PartPool(1)
    as_of, now = parse_as_of(as_of), utc_now()
    parts = partitions(source)
    checks = checks or len(parts) == 1
    cutoffs = sorted({pd.Timestamp(c) for c in cutoffs})  # a cutoff given twice is fitted once
    fits_wanted = [] if config.btyd is None or not cutoffs else [
        c for c in cutoffs if c.isoformat() not in (config.btyd_fits or {})]
    count_types = config.event_types is None and bool(cutoffs)
    with btyd_spool.Spools(fits_wanted, spool_dir) as spools:
        jobs = [ScanJob(part, fits_wanted, cutoffs[-1] if count_types else None, as_of, now,
                        keep_tables=len(parts) == 1) for part in parts]
        problems: list[tuple[str, Problem]] = []
        latest: list[pd.Timestamp] = []
        signup_end: list[pd.Timestamp] = []
        types: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        customers, cached, cached_codes, rows = 0, None, None, defaultdict(int)
        ranges: dict[str, list] = {table: [] for table, _, _ in UNIQUE}
        with closing(pool.map(check_part if checks else glance_part, jobs,
                              [p.name for p in parts])) as scanned:
            for found in bar(scanned, total=len(parts), desc="checking the data" if checks else
                             "reading the data", unit="part"):
                if found.failed is not None:
                    log.warning("glancing at part %s failed (%s); every part is checked to name "
                                "the problem. Where it failed:\n%s", found.name, found.failed,
                                found.failed_trace.rstrip())
                    raise Unchecked(f"part {found.name}: {found.failed}")
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
                    spools[c].add(found.summaries[c])
                cached, cached_codes = found.tables, found.codes
                log.debug("checked part %s: %d customers", found.name, found.customers)
        if problems:
            raise ContractError(_merge(problems, len(parts)))
        if any(overlapping(r) for r in ranges.values()):
            log.info("ids of several parts overlap in range: checking them for duplicates with DuckDB")
        cross = cross_partition_problems(parts, ranges)
        if cross:
            raise ContractError(cross) if checks else Unchecked("ids in several parts", cross)
        if customers == 0:
            empty = [Problem("customers", None, "the table has no rows: there are no customers to "
                             "build features or labels for")]
            raise ContractError(empty) if checks else Unchecked("no customers", empty)
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
        pending = None
        if (fits_wanted and defer_fits and len(parts) > 1
                and sum(spools[c].nbytes for c in fits_wanted) <= pending_fits.OVERLAP_UP_TO):
            wanted = [(spools[c].close(), config.btyd) for c in fits_wanted]
            pending = PendingFits(partial(_fit_all, dict(config.btyd_fits or {}), fits_wanted,
                                          wanted, checks), spools.detach())
        elif fits_wanted:
            fits = dict(config.btyd_fits or {})
            wanted = [(spools[c].close(), config.btyd) for c in fits_wanted]
            fitter = pool if len(parts) > 1 else PartPool(1)  # no workers started for one part
            try:
                with closing(fitter.map(btyd_spool.fit_spooled, wanted, [f"the BTYD fit at {c.date()}"
                                                       for c in fits_wanted])) as fitted:
                    for c, fit in zip(fits_wanted, fitted, strict=True):  # one cutoff per worker
                        fits[c.isoformat()] = fit
            except (WorkerError, *NOT_DATA_PROBLEMS):
                raise
            except Exception as exc:
                if checks:
                    raise
                raise Unchecked(f"the BTYD fits: {type(exc).__name__}: {exc}") from exc
            update["btyd_fits"] = fits
        config = config.model_copy(update=update) if update else config
        return SourceScan(parts, config, as_of if as_of is not None else found_end, customers, now,
                          as_of, cached, cached_codes, checks, dict(rows),
                          max(latest) if latest else None, pending_fits=pending)


def _fit_all(fits: dict, cutoffs: list[pd.Timestamp], wanted: list, checks: bool) -> dict:
    """The deferred fits (``PendingFits``), one cutoff after the other, added to ``fits``; a
    failure that is not a data problem is ``Unchecked`` as in ``scan_source``."""
    fits = dict(fits)
    try:
        for c, job in zip(cutoffs, wanted, strict=True):
            fits[c.isoformat()] = btyd_spool.fit_spooled(job)
    except NOT_DATA_PROBLEMS:
        raise
    except Exception as exc:
        if checks:
            raise
        raise Unchecked(f"the BTYD fits: {type(exc).__name__}: {exc}") from exc
    return fits


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

"""The first pass of the streamed feature build, on one customer partition: its share of what the
whole base fixes (``features.scan`` gathers the shares).

``check_part`` checks every table of the part against the contract, then takes its share from the
checked tables. ``glance_part`` takes the same share from only the columns it needs, typed but not
checked: the streamed build (``features.stream``) uses it when it has several parts and checks
each one whole in its build pass, so that each part is read whole and checked once. Both give the
same share for data that meets the contract; a glance that fails says so (``failed``) and the
caller checks every part to name the problems.
"""

from __future__ import annotations

import logging
import traceback
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.btyd import PurchaseSummary, summarise
from features.contract import TABLES, ContractError, Problem, typed_columns, validate
from features.crm import CrmData
from features.events import SortedEvents
from features.partitions import UNIQUE, Partition, id_range

log = logging.getLogger(__name__)

# what no data can cause: raised as they are, never taken for a part to check (a worker out of
# memory must not turn into a second, full check of every part; a bug must show its traceback)
NOT_DATA_PROBLEMS: tuple[type[BaseException], ...] = (
    MemoryError, NameError, ImportError, AssertionError, SyntaxError)


@dataclass(frozen=True)
class ScanJob:
    """What the first pass asks of one part (plain data: it goes to a worker process)."""

    part: Partition
    fits_wanted: list[pd.Timestamp]
    types_before: pd.Timestamp | None  # count the event types before it (None: do not)
    as_of: pd.Timestamp | None
    now: pd.Timestamp
    keep_tables: bool = False


@dataclass
class PartScan:
    """What the first pass found in one part: its problems, or what the whole base needs of it."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    failed: str | None = None  # a glance that could not take the part's share (bad data?)
    failed_trace: str = ""  # and the traceback of why
    customers: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, tuple | None] = field(default_factory=dict)
    latest: pd.Timestamp | None = None
    signup_end: pd.Timestamp | None = None
    types: dict[str, tuple[int, int]] = field(default_factory=dict)
    summaries: dict[pd.Timestamp, PurchaseSummary] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] | None = None
    codes: dict[str, np.ndarray] | None = None  # with ``tables``: each event's customer position


def check_part(job: ScanJob) -> PartScan:
    """One part checked against the contract, and its share of what the whole base fixes."""
    found = PartScan(job.part.name)
    codes: dict[str, np.ndarray] = {}
    try:
        tables = validate(job.part.read(), as_of=job.as_of, now=job.now, codes=codes)
    except ContractError as exc:
        found.problems = exc.problems
        return found
    _share(found, tables, job, codes.get("orders"))
    if job.keep_tables:
        found.tables, found.codes = tables, codes
    return found


def glance_part(job: ScanJob) -> PartScan:
    """One part's share of what the whole base fixes, from the columns that it needs (typed, not
    checked); ``failed`` says why when it cannot be taken (a data problem, perhaps: the caller
    checks every part to name it), with the traceback in ``failed_trace``. What data cannot
    cause (``NOT_DATA_PROBLEMS``: out of memory, a bug) and interrupts are raised."""
    found = PartScan(job.part.name)
    try:
        coded = {"orders": ["customer_id"]}  # matched to customers once per distinct id
        if job.types_before is not None:
            coded["engagement"] = ["event_type"]
        raw = job.part.read(_glance_columns(job), categorical=coded)
        kinds = _pop_categorical(raw.get("engagement"), "event_type")
        tables = typed_columns(raw)
        if kinds is not None:  # the event types are only counted: their codes are enough
            tables["engagement"]["event_type"] = kinds.array
        _share(found, tables, job)
    except NOT_DATA_PROBLEMS:
        raise
    except Exception as exc:  # noqa: BLE001 - unchecked data: the caller checks it to say why
        found.failed = f"{type(exc).__name__}: {exc}"
        found.failed_trace = traceback.format_exc()
    return found


def _glance_columns(job: ScanJob) -> dict[str, list[str]]:
    """Of each table: its timestamps (the data's end), the ids that are unique across parts, and
    what the purchase summaries and the event vocabulary are taken from."""
    columns = {name: [c.name for c in table.columns if c.kind == "timestamp"]
               for name, table in TABLES.items()}
    columns["customers"] += ["customer_id", "signup_date"]
    columns["orders"] += ["order_id"] + (["customer_id", "amount"] if job.fits_wanted else [])
    if job.types_before is not None:
        columns["engagement"] += ["event_type", "value"]
    return columns


def _share(found: PartScan, tables: dict[str, pd.DataFrame], job: ScanJob,
           order_codes: np.ndarray | None = None) -> None:
    """The part's share: customers, rows, id ranges, latest event, event types, summaries."""
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
        orders = SortedEvents.from_frame(crm.orders, index, "order_ts", ["amount"], order_codes)
        found.summaries = {c: _ordered(summarise(orders.before(c))) for c in job.fits_wanted}


def _pop_categorical(frame: pd.DataFrame | None, column: str) -> pd.Series | None:
    """``frame``'s ``column`` taken out when it was read as a categorical (else left)."""
    if frame is None or column not in frame.columns:
        return None
    if not isinstance(frame[column].dtype, pd.CategoricalDtype):
        return None
    return frame.pop(column)


def _count_types(engagement: pd.DataFrame, latest_cutoff: pd.Timestamp,
                 types: dict[str, list[int]]) -> None:
    """Events of each type before the latest cutoff, and those with a value (as
    ``event_type_counts`` counts them on the whole base)."""
    before = engagement["event_ts"].to_numpy("datetime64[ns]") < latest_cutoff.to_datetime64()
    kind = engagement["event_type"]
    if isinstance(kind.dtype, pd.CategoricalDtype):  # read as codes (``glance_part``)
        codes, names = kind.cat.codes.to_numpy(np.int64), kind.cat.categories
    else:
        codes, names = pd.factorize(kind.astype("str"))  # -1: missing
    before &= codes >= 0
    counts = np.bincount(codes[before], minlength=len(names))
    valued = np.zeros(len(names), dtype=np.int64)
    if "value" in engagement.columns:
        valued = np.bincount(codes[before & engagement["value"].notna().to_numpy()],
                             minlength=len(names))
    for name, n, v in zip(names, counts, valued, strict=True):
        if n:
            types[str(name)][0] += int(n)
            types[str(name)][1] += int(v)


def _ordered(s: PurchaseSummary) -> PurchaseSummary:
    """Only the customers with an order (the fit uses no others), in the customers' order."""
    has = np.isfinite(s.frequency)
    return PurchaseSummary(s.frequency[has], s.recency[has], s.age[has], s.monetary[has])


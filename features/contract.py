"""The data contract: which CRM tables exist, their columns, and the checks every source passes.

The tables and columns are declared in ``features.schema`` (re-exported here), the types each
kind of column is given in ``features.coercion``; this module holds the checks. A source that
breaks the contract raises :class:`ContractError`, which lists every problem found with the table,
the column, how many rows and a few example rows, so a data team can act on it.

Timestamps from the future are refused, not quarantined: an event after the data's as-of date (or
after the current time) means the extract is wrong (a placeholder date such as 2099-01-01, a clock
or time-zone error), it would move the data's end and make unobserved churn horizons look observed,
and dropping it quietly would change that customer's features and labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from features.coercion import coerce_table
from features.errors import BadInput
from features.events import CustomerLookup, arrow_text
from features.schema import REQUIRED_TABLES, SURVEY_SCALES, TABLES, Column, Kind, Table

__all__ = ["REQUIRED_TABLES", "SURVEY_SCALES", "TABLES", "Column", "ContractError", "Kind",
           "Problem", "Table", "parse_as_of", "typed_columns", "utc_now", "validate"]


@dataclass(frozen=True)
class Problem:
    table: str
    column: str | None
    what: str
    count: int = 0
    examples: str = ""

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        count = f" ({self.count} rows)" if self.count else ""
        examples = f"\n    e.g. {self.examples}" if self.examples else ""
        return f"{where}: {self.what}{count}{examples}"


class ContractError(BadInput):
    """The input breaks the data contract. ``problems`` lists each breach."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        n = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        super().__init__(f"the data breaks the contract ({n}):\n{lines}")

    def __reduce__(self):  # rebuilt from its problems (it crosses process boundaries)
        return (type(self), (self.problems,))


@dataclass
class _Checker:
    problems: list[Problem] = field(default_factory=list)

    def add(self, table: str, column: str | None, what: str, frame: pd.DataFrame | None = None,
            bad: np.ndarray | pd.Series | None = None, cols: list[str] | None = None) -> None:
        count, examples = 0, ""
        if frame is not None and bad is not None:
            bad = np.asarray(bad, dtype=bool)
            count = int(bad.sum())
            if count == 0:
                return
            examples = _examples(frame, bad, cols)
        self.problems.append(Problem(table, column, what, count, examples))


def _examples(frame: pd.DataFrame, bad: np.ndarray, cols: list[str] | None, n: int = 3) -> str:
    rows = frame.loc[bad, [c for c in (cols or frame.columns) if c in frame.columns]].head(n)
    parts = []
    for idx, row in rows.iterrows():
        values = ", ".join(f"{k}={v!r}" for k, v in row.items())
        parts.append(f"row {idx}: {values}")
    return "; ".join(parts)


def _check_values(table: Table, frame: pd.DataFrame, check: _Checker) -> None:
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        values = frame[col.name]
        show = list(dict.fromkeys(["customer_id", col.name]))
        if not col.nullable:
            check.add(table.name, col.name, "missing values in a required column", frame,
                      values.isna().to_numpy(bool), show)
        if col.nonnegative:
            check.add(table.name, col.name, "negative values", frame,
                      (values < 0).fillna(False).to_numpy(bool), show)


def _check_table_rules(name: str, frame: pd.DataFrame, check: _Checker) -> None:
    if name == "customers":
        dup = _duplicated(frame["customer_id"])
        check.add(name, "customer_id", "duplicated customer id", frame, dup,
                  ["customer_id", "signup_date"])
        if "cancel_date" in frame.columns:
            check.add(name, "cancel_date", "cancel_date before signup_date", frame,
                      (frame["cancel_date"] < frame["signup_date"]).fillna(False).to_numpy(bool),
                      ["customer_id", "signup_date", "cancel_date"])
    if name == "orders" and "order_id" in frame.columns:
        dup = _duplicated(frame["order_id"])
        check.add(name, "order_id", "duplicated order id", frame, dup,
                  ["order_id", "customer_id", "order_ts"])
    if name == "tickets" and "closed_ts" in frame.columns:
        check.add(name, "closed_ts", "closed before it was opened", frame,
                  (frame["closed_ts"] < frame["opened_ts"]).fillna(False).to_numpy(bool),
                  ["customer_id", "opened_ts", "closed_ts"])
    if name == "surveys":
        kind = frame["kind"]  # lower case (validate)
        unknown = ~kind.isin(list(SURVEY_SCALES)).to_numpy(bool)
        check.add(name, "kind", f"unknown survey kind (expected one of {sorted(SURVEY_SCALES)})",
                  frame, unknown, ["customer_id", "kind"])
        for k, (lo, hi) in SURVEY_SCALES.items():
            out = ((kind == k) & ((frame["score"] < lo) | (frame["score"] > hi))).fillna(False)
            check.add(name, "score", f"{k} score outside {lo:g}-{hi:g}", frame, out.to_numpy(bool),
                      ["customer_id", "kind", "score"])
        no_time = frame["response_ts"].isna()
        if "sent_ts" in frame.columns:
            no_time &= frame["sent_ts"].isna()
        check.add(name, "response_ts", "neither response_ts nor sent_ts is set", frame,
                  no_time.to_numpy(bool), ["customer_id", "kind", "score"])
        answered_no_score = (frame["response_ts"].notna() & frame["score"].isna()).to_numpy(bool)
        check.add(name, "score", "a response without a score", frame, answered_no_score,
                  ["customer_id", "kind", "response_ts"])


def _duplicated(ids: pd.Series) -> np.ndarray:
    """Which ids occur more than once, every occurrence marked; missing ones never are. Ids in
    increasing order (as extracts often come) need only one Arrow comparison of neighbours,
    about fifteen times faster than pandas' ``duplicated`` on text, used for the others."""
    values = arrow_text(ids)
    if len(values) < 2 or (not values.null_count
                           and pc.all(pc.less(values[:-1], values[1:])).as_py()):
        return np.zeros(len(values), dtype=bool)
    return (ids.notna() & ids.duplicated(keep=False)).to_numpy(bool)


def utc_now() -> pd.Timestamp:
    """The current time as the contract compares it: UTC, without a time zone."""
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def parse_as_of(value) -> pd.Timestamp | None:
    """An as-of date or timestamp (a string, date or datetime; a date means its midnight) as a
    UTC time without a time zone, like the contract's timestamps; ``None`` stays ``None``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ContractError([Problem("as_of", None, f"{value!r} is not a date or timestamp "
                                     "(YYYY-MM-DD or YYYY-MM-DDTHH:MM)")]) from exc
    if pd.isna(ts):
        raise ContractError([Problem("as_of", None, f"{value!r} is not a date or timestamp")])
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("ns")


def validate(raw: dict[str, pd.DataFrame], as_of=None, now: pd.Timestamp | None = None, *,
             checks: bool = True, codes: dict[str, np.ndarray] | None = None
             ) -> dict[str, pd.DataFrame]:
    """Check ``raw`` tables against the contract and return them with contract types.

    ``as_of`` is the moment the data was extracted (optional): no timestamp may be later, and no
    timestamp may be later than ``now`` (the current UTC time by default) either.
    Raises :class:`ContractError` listing every problem; nothing is returned half-checked.
    ``checks=False`` only gives the tables their types (for tables this function already passed,
    read again); a value that does not convert still raises. ``codes``, when given, receives each
    event table's customers as positions in the customers table (``customer_codes``: the checks
    find them, the feature build reuses them).
    """
    as_of = parse_as_of(as_of)
    now = utc_now() if now is None else parse_as_of(now)
    if as_of is not None and as_of > now:
        raise ContractError([Problem("as_of", None, f"the as-of date {as_of} is in the future "
                                     f"(now is {now:%Y-%m-%d %H:%M} UTC)")])
    check = _Checker()
    for name in REQUIRED_TABLES:
        if name not in raw:
            check.add(name, None, "required table is missing (expected a file named "
                                  f"{name}.parquet or {name}.csv, or a DuckDB table {name})")
    typed: dict[str, pd.DataFrame] = {}
    for name, frame in raw.items():
        table = TABLES.get(name)
        if table is None:
            continue
        missing = [c.name for c in table.columns if c.required and c.name not in frame.columns]
        if missing:
            for col in missing:
                found = ", ".join(map(str, list(frame.columns)[:12]))
                check.add(name, col, f"required column is missing (columns found: {found})")
            continue
        frame = coerce_table(table, frame.reset_index(drop=True), check)
        if name == "surveys":
            frame["kind"] = frame["kind"].str.lower()
        if checks:
            _check_values(table, frame, check)
            _check_table_rules(name, frame, check)
            _check_not_after(table, frame, as_of, now, check)
        typed[name] = frame
    if "customers" in typed and typed["customers"].empty:
        check.add("customers", None, "the table has no rows: there are no customers to build "
                                     "features or labels for")
    customers = typed.get("customers")
    if checks and customers is not None and not any(p.table == "customers"
                                                    for p in check.problems):
        _check_references(customers, typed, check, codes)
    if check.problems:
        raise ContractError(check.problems)
    return typed


def typed_columns(raw: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Some columns of the contract's tables with their contract types and no checks (a quick look
    at data that ``validate`` checks later); raises :class:`ContractError` when a value does not
    convert."""
    check = _Checker()
    typed = {name: coerce_table(TABLES[name], frame.reset_index(drop=True), check)
             for name, frame in raw.items() if name in TABLES}
    if check.problems:
        raise ContractError(check.problems)
    return typed


def _check_not_after(table: Table, frame: pd.DataFrame, as_of: pd.Timestamp | None,
                     now: pd.Timestamp, check: _Checker) -> None:
    """Every timestamp and date no later than the as-of date, and none in the future."""
    for col in table.columns:
        if col.kind not in ("timestamp", "date") or col.name not in frame.columns:
            continue
        values = frame[col.name]
        show = list(dict.fromkeys(["customer_id", col.name]))
        future = (values > now).fillna(False).to_numpy(bool)
        check.add(table.name, col.name, f"timestamps in the future (after now, "
                  f"{now:%Y-%m-%d %H:%M} UTC): refused, they would count churn horizons that "
                  "have not happened as observed; fix the extract", frame, future, show)
        if as_of is not None:
            late = ((values > as_of).fillna(False).to_numpy(bool)) & ~future
            check.add(table.name, col.name, f"timestamps after the data's as-of date {as_of}: "
                      "refused, the data cannot hold events from after it was extracted; fix "
                      "the extract or the as-of date", frame, late, show)


def _check_references(customers: pd.DataFrame, typed: dict[str, pd.DataFrame],
                      check: _Checker, codes: dict[str, np.ndarray] | None = None) -> None:
    lookup = CustomerLookup(customers["customer_id"])  # the customers' side once, every table
    signup_or_nat = np.append(customers["signup_date"].to_numpy("datetime64[ns]"),
                              np.datetime64("NaT", "ns"))
    for name, frame in typed.items():
        table = TABLES[name]
        if table.event_time is None:
            continue
        pos = lookup.codes(frame["customer_id"])
        if codes is not None:
            codes[name] = pos
        unknown = pos < 0
        check.add(name, "customer_id", "event for a customer not in the customers table", frame,
                  unknown, ["customer_id", table.event_time])
        ts = frame[table.event_time].to_numpy("datetime64[ns]")
        early = ts < signup_or_nat[pos]  # an unknown customer (-1) finds NaT: never early
        check.add(name, table.event_time, "event before the customer's signup_date", frame, early,
                  ["customer_id", table.event_time])

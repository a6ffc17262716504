"""The contract's types given to raw columns: ids and text as strings (text read as a categorical
stays one: ``Partition.read``'s), numbers as floats, timestamps and dates as UTC times without a
time zone, booleans as nullable booleans.

``features.contract`` calls :func:`coerce_table` on each table before it checks the values; a value
that does not convert is a contract problem (its table, column and example rows), reported
through the checker it passes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from features.schema import Table

__all__ = ["CODED", "Checker", "coerce_table"]


class Checker(Protocol):
    """Where a column's unconvertible values go (``features.contract``'s checker)."""

    def add(self, table: str, column: str | None, what: str, frame: pd.DataFrame | None = None,
            bad: np.ndarray | pd.Series | None = None, cols: list[str] | None = None) -> None: ...


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def _to_bool(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Coerce to nullable boolean; returns the result and a mask of values that are not booleans."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean"), np.zeros(len(values), dtype=bool)
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
    bad = (values.notna() & out.isna()).to_numpy(bool)
    return out, bad


def _to_time(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC times without a time zone, and a mask of the values that do not parse (none when
    they are times already)."""
    typed = pd.api.types.is_datetime64_any_dtype(values)
    out = values if typed else pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    out = out.astype("datetime64[ns]")
    bad = (np.zeros(len(values), dtype=bool) if typed
           else (values.notna() & out.isna()).to_numpy(bool))
    return out, bad


CODED = "churn.coded"  # a frame's attrs key: the text columns ``Partition.read`` read as codes


def _text_codes(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` is text read as codes on purpose (``Partition.read``'s categoricals of
    Parquet's dictionary). Any other categorical (a user's, ordered or not, of text or numbers)
    becomes plain text: ids are compared and ranged as text, never in category order."""
    values = frame[column]
    return (column in frame.attrs.get(CODED, ())
            and isinstance(values.dtype, pd.CategoricalDtype)
            and pd.api.types.infer_dtype(values.cat.categories, skipna=True) in ("string", "empty"))


def coerce_table(table: Table, frame: pd.DataFrame, check: Checker) -> pd.DataFrame:
    """``frame`` with each of ``table``'s columns in its contract type (a shallow copy: columns
    are replaced, never changed in place); values that do not convert go to ``check``
    (``features.contract``'s checker) with the table, the column and example rows, and the
    column keeps what it had (an id column with fractional numbers) or gets missing values."""
    frame = frame.copy(deep=False)
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        values = frame[col.name]
        if col.kind in ("id", "string") and _text_codes(frame, col.name):
            continue  # text already, as codes (``Partition.read``'s categoricals): kept
        if col.kind in ("id", "string"):
            if pd.api.types.is_float_dtype(values):
                fractional = (values.notna() & (values != np.round(values))).to_numpy(bool)
                if fractional.any():
                    check.add(table.name, col.name, "ids must be text or whole numbers", frame,
                              fractional, [col.name])
                    continue
                values = values.astype("Int64")
            frame[col.name] = values.astype("str")
        elif col.kind == "number":
            if pd.api.types.is_bool_dtype(values):
                out = values.astype(float)
            elif pd.api.types.is_numeric_dtype(values):  # numbers already: nothing to parse
                out = values
            else:
                out = pd.to_numeric(values, errors="coerce")
                bad = (values.notna() & out.isna()).to_numpy(bool)
                check.add(table.name, col.name, "not a number", frame, bad, [col.name])
            frame[col.name] = out.astype("float64")
        elif col.kind in ("timestamp", "date"):
            out, bad = _to_time(values)
            check.add(table.name, col.name, "timestamp does not parse", frame, bad, [col.name])
            frame[col.name] = out
        elif col.kind == "bool":
            out, bad = _to_bool(values)
            check.add(table.name, col.name, "not a boolean (true/false, yes/no, 1/0)", frame, bad,
                      [col.name])
            frame[col.name] = out
    return frame

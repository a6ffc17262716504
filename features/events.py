"""EventView: one table's events strictly before a cutoff, as arrays grouped by customer.

All feature families are written against this view, so they are plain numpy on the events of any
set of customers (one machine, or one partition on a distributed engine).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DAY_NS = 86_400 * 10**9


def customer_codes(customer_ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Each event's customer as a position in ``index`` (-1: not there; an id listed twice: its
    first position); ``customer_ids`` may be a categorical of text. Ids of one length of at most
    8 bytes (``C0012345``, 8-digit numbers) are matched as integers (1.5-1.8x as fast); others
    by an Arrow hash join of the text (pandas' ``get_indexer`` on text is many times slower).
    For several tables against one index, :class:`CustomerLookup` does the index's part once."""
    return CustomerLookup(index).codes(customer_ids)


class CustomerLookup:
    """Events' customers found as positions in one customers ``index`` (``customer_codes``):
    what depends on the index alone (its text, its integer keys and their hash table) is worked
    out once, for every table matched against it."""

    def __init__(self, index):
        self.text = arrow_text(index)
        self._by_width: dict[int, pd.Index | None] = {}  # the index's keys of that width, hashed

    def codes(self, customer_ids: pd.Series) -> np.ndarray:
        if isinstance(customer_ids.dtype, pd.CategoricalDtype):  # each distinct id matched once
            found = self.codes(pd.Series(customer_ids.cat.categories))
            lookup = np.append(found, np.int64(-1))  # the code of a missing id, -1, finds -1
            return lookup[customer_ids.cat.codes.to_numpy()]  # one gather per event
        ids = arrow_text(customer_ids)
        keys = _fixed_width_keys(ids)
        if keys is not None:
            known = self._keyed(keys[1])
            if known is not None:
                return known.get_indexer(keys[0]).astype(np.int64, copy=False)
        codes = pc.index_in(ids, value_set=self.text.cast(ids.type))
        return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def _keyed(self, width: int) -> pd.Index | None:
        """The index's ids as integer keys of ``width`` bytes, when all are and none repeats."""
        if width not in self._by_width:
            known = _fixed_width_keys(self.text, width)
            lookup = None if known is None else pd.Index(known[0])
            self._by_width[width] = lookup if lookup is not None and lookup.is_unique else None
        return self._by_width[width]


def _fixed_width_keys(text: pa.Array, width: int | None = None) -> tuple[np.ndarray, int] | None:
    """Text values all ``width`` bytes long (any one width when None, at most 8) as integers
    (their bytes, read as one big-endian number: equal keys for equal values, and only for
    them); None when some value is missing or of another length."""
    if text.null_count or not len(text):
        return None
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(text.buffers()[1], dtype=offset_type)[
        text.offset:text.offset + len(text) + 1]
    first = int(offsets[1] - offsets[0])
    if width is None:
        width = first
    if not 0 < width <= 8 or first != width or int(offsets[-1] - offsets[0]) != width * len(text):
        return None
    if not bool(np.all(np.diff(offsets) == width)):
        return None
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[int(offsets[0]):int(offsets[-1])]
    padded = np.zeros((len(text), 8), dtype=np.uint8)
    padded[:, 8 - width:] = data.reshape(len(text), width)
    return padded.view(">u8").ravel().astype(np.uint64), width


def arrow_text(values) -> pa.Array:
    """``values`` (a Series, an Index, a list) as one Arrow text array: chunks combined, other
    types cast to text, missing values null."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return array


def sort_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation that sorts events by (customer code, time), ties in their order: that of
    ``np.lexsort((ts, codes))``. Event logs usually come in time order; then a stable sort on
    the codes alone gives it, done as a radix sort on 16-bit digits (numpy sorts 16-bit keys
    stably in linear time), several times faster than the comparison sort."""
    if len(ts) < 2 or not bool(np.all(ts[1:] >= ts[:-1])) or (len(codes) and codes.min() < 0):
        return np.lexsort((ts, codes))
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    top, shift = int(codes.max()) if len(codes) else 0, 16
    while top >> shift:  # the next 16 bits, stably: ties keep the order so far
        digit = ((codes[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


class SortedEvents:
    """A table's events sorted once by (customer, time); :meth:`before` cuts it at a cutoff."""

    def __init__(self, codes: np.ndarray, ts: np.ndarray, n_customers: int,
                 columns: dict[str, np.ndarray]):
        order = sort_order(codes, ts)
        self.codes = codes[order]
        self.ts = ts[order]
        self.columns = {k: v[order] for k, v in columns.items()}
        self.n = n_customers

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, index: pd.Index, time_col: str,
                   columns: list[str], codes: np.ndarray | None = None) -> SortedEvents:
        """The events of ``frame`` (``codes``: each one's customer as a position in ``index``,
        when already found; else found here)."""
        if codes is None:
            codes = customer_codes(frame["customer_id"], index)
        ts = frame[time_col].to_numpy("datetime64[ns]").view(np.int64)
        keep = (codes >= 0) & (ts != np.iinfo(np.int64).min)  # unknown customers / NaT dropped
        cols = {c: _numpy(frame[c])[keep] for c in columns if c in frame.columns}
        return cls(codes[keep], ts[keep], len(index), cols)

    def before(self, cutoff: pd.Timestamp) -> EventView:
        cut = np.int64(pd.Timestamp(cutoff).value)
        keep = self.ts < cut
        age = (cut - self.ts[keep]) / DAY_NS
        return EventView(self.codes[keep], age, self.n,
                         {k: v[keep] for k, v in self.columns.items()}, cut)


class Coded:
    """A text column as integer codes: comparisons cost what integer comparisons cost."""

    __array_priority__ = 1000  # so ``array == Coded`` is never tried elementwise by numpy

    def __init__(self, codes: np.ndarray, categories: list[str]):
        self.codes, self.categories = codes, list(categories)

    @classmethod
    def from_series(cls, values: pd.Series) -> Coded:
        cat = pd.Categorical(values)
        return cls(cat.codes.astype(np.int32), [str(c) for c in cat.categories])

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key) -> Coded:
        return Coded(self.codes[key], self.categories)

    def __eq__(self, value) -> np.ndarray:  # type: ignore[override]
        return self.isin([value])

    def isin(self, values) -> np.ndarray:
        wanted = set(values)
        table = np.array([c in wanted for c in self.categories] + [False])  # code -1 (missing)
        return table[self.codes]  # one lookup per event (np.isin compares with each value)


def _numpy(values: pd.Series) -> np.ndarray | Coded:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.to_numpy("datetime64[ns]").view(np.int64)
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64").to_numpy(np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(np.float64, na_value=np.nan)
    return Coded.from_series(values)


class EventView:
    """Events before a cutoff: ``codes`` (customer positions, sorted), ``age`` (days before it)."""

    def __init__(self, codes: np.ndarray, age: np.ndarray, n: int, columns: dict[str, np.ndarray],
                 cutoff_ns: np.int64):
        self.codes, self.age, self.n, self.columns, self.cutoff_ns = codes, age, n, columns, cutoff_ns
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def col(self, name: str) -> np.ndarray:
        return self.columns[name]

    def has(self, name: str) -> bool:
        return name in self.columns

    def where(self, mask: np.ndarray) -> EventView:
        return EventView(self.codes[mask], self.age[mask], self.n,
                         {k: v[mask] for k, v in self.columns.items()}, self.cutoff_ns)

    def window_mask(self, window: float | None, start: float = 0.0) -> np.ndarray | None:
        """Events in [cutoff - start - window, cutoff - start): ages in (start, start + window]."""
        if window is None and start == 0:
            return None
        m = self.age > start if start > 0 else np.ones(len(self.age), dtype=bool)
        if window is not None:
            m &= self.age <= start + window
        return m

    def count(self, window: float | None = None, mask: np.ndarray | None = None,
              start: float = 0.0) -> np.ndarray:
        """Events per customer in [cutoff - start - window, cutoff - start)."""
        m = _and(self.window_mask(window, start), mask)
        codes = self.codes if m is None else self.codes[m]
        return np.bincount(codes, minlength=self.n).astype(np.float64)

    def total(self, values: np.ndarray, window: float | None = None,
              mask: np.ndarray | None = None, start: float = 0.0) -> np.ndarray:
        m = _and(self.window_mask(window, start), mask)
        ok = ~np.isnan(values)
        m = ok if m is None else (m & ok)
        return np.bincount(self.codes[m], weights=values[m], minlength=self.n)

    def mean(self, values: np.ndarray, window: float | None = None,
             mask: np.ndarray | None = None, start: float = 0.0) -> np.ndarray:
        """Mean of non-missing ``values`` per customer; NaN where there is none."""
        ok = ~np.isnan(values)
        m = _and(_and(self.window_mask(window, start), mask), ok)
        n = np.bincount(self.codes[m], minlength=self.n).astype(np.float64)
        s = np.bincount(self.codes[m], weights=values[m], minlength=self.n)
        return ratio(s, n)

    def _group_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self._bounds is None:
            ids = np.arange(self.n)
            self._bounds = (np.searchsorted(self.codes, ids, side="left"),
                            np.searchsorted(self.codes, ids, side="right"))
        return self._bounds

    def nth_last(self, values: np.ndarray, k: int = 1) -> np.ndarray:
        """The value of each customer's k-th latest event (1 = latest); NaN if fewer events."""
        start, end = self._group_bounds()
        out = np.full(self.n, np.nan)
        has = (end - start) >= k
        out[has] = values[end[has] - k]
        return out

    def days_since_last(self) -> np.ndarray:
        return self.nth_last(self.age, 1)

    def days_since_first(self) -> np.ndarray:
        start, end = self._group_bounds()
        out = np.full(self.n, np.nan)
        has = end > start
        out[has] = self.age[start[has]]
        return out


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den is 0 (no evidence, not zero)."""
    out = np.full(len(num), np.nan)
    ok = den > 0
    if _DOUBLE.get(np.asarray(num).dtype) and _DOUBLE.get(np.asarray(den).dtype):
        np.divide(num, den, out=out, where=ok)  # in place: the division of doubles, no copies
    else:
        out[ok] = num[ok] / den[ok]
    return out


_DOUBLE = {np.dtype(np.float64): True, np.dtype(np.int64): True}  # divided as doubles

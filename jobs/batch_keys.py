"""Each row's key, (customer, cutoff), and the keys the whole input holds more than once.

A row's key is its id and, when the table has a ``cutoff`` column, its cutoff day as text
(``cutoff_text``); the batch job quarantines every copy of a key found more than once
(``duplicated_keys``: a first pass over the key columns only, whatever the chunking). Used by
both engines: ``jobs.batch`` and ``jobs.spark_scoring``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from jobs.batch_output import BatchConfig, BatchError
from jobs.batch_read import chunks, columns, row_count

__all__ = ["CUTOFF", "cutoff_text", "row_keys", "duplicated_keys"]

CUTOFF = "cutoff"


def cutoff_text(values: pd.Series) -> np.ndarray:
    """Each row's cutoff as YYYY-MM-DD ("" when missing or not a date)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":  # naive timestamps
        # each distinct day written once (a chunk has few: usually one cutoff for every row)
        days, inverse = np.unique(values.to_numpy("datetime64[D]"), return_inverse=True)
        text = np.datetime_as_string(days, unit="D").astype(object)
        text[np.isnat(days)] = ""
        return text[inverse.ravel()]
    days = pd.to_datetime(values, errors="coerce", format="mixed")
    return days.dt.strftime("%Y-%m-%d").fillna("").to_numpy(object)


def row_keys(chunk: pd.DataFrame, config: BatchConfig, cutoffs: np.ndarray | None = None
             ) -> pd.Series:
    """Each row's key: its id, and its cutoff when the table has one (None when the id is
    missing); ``cutoffs``: the chunk's ``cutoff_text`` when already made."""
    ids = chunk[config.id_column]
    keys = ids.astype(str)
    if CUTOFF in chunk.columns:
        keys = keys + "@" + (cutoff_text(chunk[CUTOFF]) if cutoffs is None else cutoffs)
    return keys.where(ids.notna(), None)


def duplicated_keys(source: pd.DataFrame | Path, config: BatchConfig) -> set[str]:
    """The (customer, cutoff) keys found more than once in the whole input: a first pass over
    the key columns only, so that every copy is quarantined whatever the chunking.

    The first pass keeps a 64-bit hash per row (8 bytes a row, no Python set of every key);
    only keys whose hash occurs twice are read again and compared as text, so a hash collision
    never quarantines a row."""
    names = [c for c in (config.id_column, CUTOFF) if c in columns(source)]
    if config.id_column not in names:
        raise BatchError(f"the input has no {config.id_column!r} column")
    every = _all_hashes(source, config, names)
    every.sort()  # in place: the first pass holds one 8-byte hash per row, no copy
    candidates = np.unique(every[1:][every[1:] == every[:-1]])
    del every
    if not len(candidates):
        return set()
    counts: dict[str, int] = {}
    for chunk in chunks(source, config.chunk_size, names):
        keyed = _with_id(chunk, config)
        keys = row_keys(keyed, config)
        for key in keys[np.isin(_key_hashes(keyed), candidates)]:
            counts[key] = counts.get(key, 0) + 1
    return {key for key, n in counts.items() if n > 1}


def _all_hashes(source: pd.DataFrame | Path, config: BatchConfig, names: list[str]
                ) -> np.ndarray:
    """Every keyed row's ``_key_hashes``, in one array (filled in place when the number of rows
    is known without reading them: no list of chunks and copy of it)."""
    total = row_count(source)
    if total is None:
        parts = [_key_hashes(_with_id(chunk, config))
                 for chunk in chunks(source, config.chunk_size, names)]
        return np.concatenate(parts) if parts else np.array([], dtype=np.uint64)
    every, filled = np.empty(total, dtype=np.uint64), 0
    for chunk in chunks(source, config.chunk_size, names):
        h = _key_hashes(_with_id(chunk, config))
        every[filled:filled + len(h)] = h
        filled += len(h)
    return every[:filled]


def _with_id(chunk: pd.DataFrame, config: BatchConfig) -> pd.DataFrame:
    """The rows that have an id (the others have no key)."""
    ids = chunk[config.id_column]
    return chunk if not ids.isna().any() else chunk[ids.notna().to_numpy()]


def _key_hashes(keyed: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's key (``row_keys``) without making its text: rows with the
    same key text have the same id text and the same cutoff day, so the same hash."""
    ids = keyed[next(c for c in keyed.columns if c != CUTOFF)].astype(str)
    h = pd.util.hash_pandas_object(ids, index=False).to_numpy(np.uint64)
    if CUTOFF in keyed.columns:
        cutoffs = keyed[CUTOFF]
        if isinstance(cutoffs.dtype, np.dtype) and cutoffs.dtype.kind == "M":  # as cutoff_text
            day = cutoffs.to_numpy("datetime64[D]").view(np.int64)
            h = h ^ pd.util.hash_array(day)
        else:
            h = h ^ pd.util.hash_array(cutoff_text(cutoffs).astype(object))
    return h

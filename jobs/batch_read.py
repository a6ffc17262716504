"""The batch job's input: the table in chunks, read ahead, each turned into the model's matrix.

A Parquet chunk's plain numeric feature columns go from Arrow straight into the column-major
matrix (one copy each, no pandas frame); the other columns the job needs (the id, the cutoff and
every feature the encoding must check or translate: categories, booleans, text) become a small
pandas frame, encoded by ``scoring.scorer.encode_frame`` as before, so the matrix is the one
``ChurnScorer.matrix`` makes of the whole chunk (tested). CSV files and in-memory frames are read
with pandas and encoded whole. The next chunk is read and encoded in a background thread while
this one is scored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.spec import CATEGORY
from jobs.batch_output import BatchError
from scoring.scorer import ChurnScorer, ScoringInputError, encode_frame

__all__ = ["Chunk", "chunks", "columns", "model_chunks", "read_ahead", "row_count"]


@dataclass(frozen=True)
class Chunk:
    """A block of input rows: the model's matrix and the columns the job reads by name."""

    frame: pd.DataFrame  # the id, the cutoff, the features that are not plain numbers (Parquet)
    x: np.ndarray  # the model's matrix, column-major

    def __len__(self) -> int:
        return len(self.x)


def columns(source: pd.DataFrame | Path) -> list[str]:
    """The input's column names ([] for an empty CSV file)."""
    if isinstance(source, pd.DataFrame):
        return list(source.columns)
    path = Path(source)
    if path.suffix.lower() == ".parquet":
        return list(pq.read_schema(path).names)
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        return []


def row_count(source: pd.DataFrame | Path) -> int | None:
    """The number of input rows when it is known without reading them (None for CSV)."""
    if isinstance(source, pd.DataFrame):
        return len(source)
    path = Path(source)
    return pq.ParquetFile(path).metadata.num_rows if path.suffix.lower() == ".parquet" else None


def chunks(source: pd.DataFrame | Path, size: int, names: list[str] | None = None
           ) -> Iterator[pd.DataFrame]:
    """The input in pandas chunks of ``size`` rows (only the columns ``names`` when given: the
    same chunks, so a CSV's types are inferred alike in every pass)."""
    if isinstance(source, pd.DataFrame):
        frame = source if names is None else source[names]
        for start in range(0, len(frame), size):
            yield frame.iloc[start:start + size].reset_index(drop=True)
        return
    path = Path(source)
    if path.suffix.lower() == ".parquet":
        for batch in _parquet(path).iter_batches(batch_size=size, columns=names):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=size, low_memory=False,
                               usecols=None if names is None else lambda c: c in names)


def model_chunks(source: pd.DataFrame | Path, scorer: ChurnScorer, size: int,
                 keep: list[str]) -> Iterator[Chunk]:
    """The input in chunks of ``size`` rows, each with the model's matrix; ``keep``: the other
    columns the job reads by name (kept when the input has them). A chunk that cannot be encoded
    (a feature column missing or not numeric) raises ``BatchError``."""
    path = None if isinstance(source, pd.DataFrame) else Path(source)
    if path is None or path.suffix.lower() != ".parquet":
        for frame in chunks(source, size):
            yield Chunk(frame, _encoded(scorer, frame, scorer.features, scorer.kinds))
        return
    file = _parquet(path)
    present = set(file.schema_arrow.names)
    wanted = [c for c in dict.fromkeys([*keep, *scorer.features]) if c in present]
    plain = {name for name, kind in zip(scorer.features, scorer.kinds, strict=True)
             if kind != CATEGORY and name in present
             and _is_plain(file.schema_arrow.field(name).type)}
    rest = [c for c in wanted if c not in plain]
    others = [(j, name, kind) for j, (name, kind)
              in enumerate(zip(scorer.features, scorer.kinds, strict=True)) if name not in plain]
    for batch in file.iter_batches(batch_size=size, columns=wanted, use_threads=False):
        frame = batch.select(rest).to_pandas()
        x = np.empty((batch.num_rows, len(scorer.features)), order="F")
        for j, name in enumerate(scorer.features):
            if name in plain:
                x[:, j] = _numbers(batch.column(name))
        if others:
            x[:, [j for j, _, _ in others]] = _encoded(
                scorer, frame, [n for _, n, _ in others], [k for _, _, k in others])
        yield Chunk(frame, x)


def _parquet(path: Path) -> pq.ParquetFile:
    """A Parquet file to read in batches, without pre-buffering: pyarrow keeps every pre-buffered
    column chunk until the file is closed (about the compressed file's size by the last batch:
    the 1M-row benchmark table's 0.2 GB), while reading without it is as fast on a local disk."""
    return pq.ParquetFile(path, pre_buffer=False)


def _is_plain(kind: pa.DataType) -> bool:
    """Integers and floats: numbers as they are (pandas reads them as int or float columns,
    which ``encode_frame`` converts as they are too)."""
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _numbers(column: pa.Array) -> np.ndarray:
    """A plain numeric column's values (a missing value as NaN)."""
    if column.null_count:
        return column.to_numpy(zero_copy_only=False)  # floats, missing values as NaN
    return column.to_numpy()  # the values themselves, converted as they are copied


def _encoded(scorer: ChurnScorer, frame: pd.DataFrame, names: list[str], kinds: list[str]
             ) -> np.ndarray:
    try:
        return encode_frame(frame, names, kinds, scorer.categories, order="F")
    except ScoringInputError as exc:
        raise BatchError(str(exc)) from exc


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(items: Iterable) -> Iterator:
    """The same items, the next one read in a background thread while this one is used (Parquet
    decoding and the copies into the matrix release the GIL, so reading overlaps scoring on a
    second core). The thread reads an item only once the previous one was taken, so at most one
    waits beside the one in use; it stops when the consumer stops, also on an error, and an
    error of the reader is raised in the consumer after the items read before it."""
    ready: queue.Queue = queue.Queue()
    slot = threading.Semaphore(1)  # taken while an item is read or waits to be taken
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            iterator = iter(items)
            while True:
                while not slot.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(iterator, done)
                ready.put(item)
                if item is done:
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            ready.put(_Failed(exc))

    thread = threading.Thread(target=produce, name="batch-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            slot.release()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()

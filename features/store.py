"""The online feature store: each customer's latest features, looked up by id in the request path.

``FeatureStore`` is the interface (a Redis or database store can implement it); ``SQLiteStore`` is
the embedded default: one row per customer, keyed by customer id. A row is packed (format 2): the
numeric features as float64 bytes (NaN = missing) followed by the other features as a short JSON
list, so a lookup decodes the numbers with ``numpy.frombuffer`` instead of parsing a 5 kB JSON
object (most of a lookup's time). Stores written by older versions (format 1: a JSON object per
row) are still read. A lookup by primary key takes tens of microseconds (``make bench-serve``
reports it).

Every store carries a version stamp in its ``meta`` table (format, when it was written, a hash of
its content, the number of customers). Opening a store checks it: a file that is not a SQLite
database, has another schema, has no stamp, or whose rows do not match the stamp is refused with
a :class:`StoreError` naming the file and the problem in one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.errors import BadInput
from features.io import write_atomic
from features.packed_rows import PackedRow, RowLayout

log = logging.getLogger(__name__)

STORE_FORMAT = "churn-online-store/2"  # packed rows (``PackedRow``)
JSON_FORMAT = "churn-online-store/1"  # a JSON object per row: still read
COLUMNS = ("customer_id", "as_of", "payload")
CHUNK = 500  # ids per lookup query (SQLite allows at least 999 parameters)
_LOOKUP = "select customer_id, as_of, payload from features where customer_id in ({marks})"


class StoreError(BadInput):
    """A store file that cannot be served: missing, not a store, or damaged."""


@dataclass(frozen=True)
class StoreStamp:
    """What a store holds, written with it: the service reports it and compares versions."""

    written_at: str
    content_hash: str
    customers: int
    features: int

    @property
    def version(self) -> str:
        """Short content hash: the same rows give the same version, whenever written."""
        return self.content_hash[:12]

    def describe(self) -> dict[str, Any]:
        return {"version": self.version, **asdict(self)}


class FeatureStore(Protocol):
    stamp: StoreStamp

    def get_many(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """{customer_id: (as_of, features)} for the ids found; missing ids are left out."""

    def __len__(self) -> int: ...


def get_rows(store: FeatureStore, ids: list[str]) -> dict[str, tuple[str, PackedRow | dict]]:
    """As ``store.get_many``, each customer's features as the store holds them: a store that
    packs its rows may give a ``PackedRow`` (read without building a dict) through an optional
    ``get_rows`` method; any other store gives the dicts of ``get_many``."""
    method = getattr(store, "get_rows", None)
    return method(ids) if method is not None else store.get_many(ids)


def _clean(value):
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_ | bool):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value if isinstance(value, int | float) else str(value)


def materialize(frame: pd.DataFrame, feature_names: list[str], path: str | Path) -> int:
    """Write the latest row per customer (by ``cutoff``) to a SQLite store, atomically, with its
    version stamp. Feature names given twice (in ``feature_names`` or as the frame's columns)
    are refused before anything is written: no reader could open such a store."""
    _refuse_duplicates(frame, feature_names, path)
    latest = frame.sort_values("cutoff").drop_duplicates("customer_id", keep="last")

    def write(tmp: Path) -> None:
        con = sqlite3.connect(tmp)
        con.execute("create table features (customer_id text primary key, as_of text not null, "
                    "payload blob not null)")
        con.execute("create table meta (key text primary key, value text)")
        layout = RowLayout.of(latest, feature_names)
        numbers = (latest[list(layout.numbers)].to_numpy(np.float64) if layout.numbers else
                   np.empty((len(latest), 0)))
        texts = [latest[c].tolist() for c in layout.texts]
        as_of = latest["cutoff"].dt.date.astype(str).tolist()
        digest = hashlib.sha256(json.dumps([feature_names, layout.meta()]).encode())

        def rows():
            for i, cid in enumerate(latest["customer_id"].astype(str).tolist()):
                payload = layout.pack(numbers[i], [_clean(col[i]) for col in texts])
                digest.update(f"{cid}\0{as_of[i]}\0".encode() + payload + b"\n")
                yield cid, as_of[i], payload

        con.executemany("insert into features values (?, ?, ?)", rows())
        stamp = {"format": STORE_FORMAT, "features": json.dumps(feature_names), **layout.meta(),
                 "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "content_hash": digest.hexdigest(), "customers": str(len(latest))}
        con.executemany("insert into meta values (?, ?)", stamp.items())
        con.commit()
        con.close()

    path = write_atomic(path, write)
    log.info("materialised %d customers into %s", len(latest), path)
    return len(latest)


def _refuse_duplicates(frame: pd.DataFrame, feature_names: list[str], path: str | Path) -> None:
    """One line naming the names given twice (a few of them), in the list or the frame."""
    wanted = {*feature_names, "customer_id", "cutoff"}
    listed = pd.Index(feature_names, dtype=object)
    columns = pd.Index([c for c in frame.columns if c in wanted], dtype=object)
    where = [(f"in the feature list: {_some(listed[listed.duplicated()].unique())}")
             if listed.has_duplicates else "",
             (f"as frame columns: {_some(columns[columns.duplicated()].unique())}")
             if columns.has_duplicates else ""]
    if any(where):
        raise BadInput(f"online store {path}: feature names given twice "
                       f"({'; '.join(w for w in where if w)}); nothing written")


def _some(names, shown: int = 5) -> str:
    return ", ".join(map(str, names[:shown])) + (f" and {len(names) - shown} more"
                                                  if len(names) > shown else "")


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def file_identity(path: str | Path) -> tuple[int, int, int, int] | None:
    """(device, inode, mtime, size) of the file at ``path``, None when there is none: a cheap way
    to notice that a store was rewritten (``materialize`` renames a new file into place)."""
    try:
        return _identity(Path(path))
    except OSError:
        return None


def _read_stamp(con: sqlite3.Connection, path: Path) -> tuple[StoreStamp, RowLayout | None]:
    """Check the schema and the stamp; raise StoreError saying what is wrong. The layout of a
    packed store's rows, None for the JSON format."""
    tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
    if not {"features", "meta"} <= tables:
        raise StoreError(f"online store {path} is not a churn feature store (tables: "
                         f"{', '.join(sorted(tables)) or 'none'})")
    columns = tuple(r[1] for r in con.execute("pragma table_info(features)"))
    if columns != COLUMNS:
        raise StoreError(f"online store {path} has features columns {columns}, not {COLUMNS}")
    meta = dict(con.execute("select key, value from meta"))
    form = meta.get("format")
    if form not in (STORE_FORMAT, JSON_FORMAT):
        if isinstance(form, str) and form.startswith("churn-online-store/"):
            raise StoreError(f"online store {path} has format {form!r}, which this churn cannot "
                             f"read (it reads {JSON_FORMAT} and {STORE_FORMAT}): written by a "
                             "newer churn; upgrade, or run `churn features materialize` again")
        raise StoreError(f"online store {path} has no {JSON_FORMAT} version stamp or a later one "
                         "(written by an older churn, or not by churn): run `churn features "
                         "materialize` again")
    try:
        features = json.loads(meta["features"])
        stamp = StoreStamp(meta["written_at"], meta["content_hash"], int(meta["customers"]),
                           len(features))
        layout = None
        if form == STORE_FORMAT:
            layout = RowLayout(tuple(features), tuple(json.loads(meta["numbers"])),
                               frozenset(json.loads(meta["integers"])))
            if not set(layout.numbers) <= set(features) or not layout.integers <= set(
                    layout.numbers) or len(set(features)) != len(features):
                raise ValueError("its numeric columns are not among its features")
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"online store {path} has a damaged version stamp ({exc!r})") from exc
    check = con.execute("pragma quick_check").fetchone()[0]
    if check != "ok":
        raise StoreError(f"online store {path} is damaged: {check}")
    count = con.execute("select count(*) from features").fetchone()[0]
    if count != stamp.customers:
        raise StoreError(f"online store {path} holds {count} customers, its stamp says "
                         f"{stamp.customers}: it is incomplete or was changed after writing")
    if layout is not None:  # every row must hold its numbers (length() reads no row's content)
        short = con.execute("select customer_id from features where typeof(payload) != 'blob' "
                            "or length(payload) < ? limit 3", (layout.size,)).fetchall()
        if short:
            raise StoreError(f"online store {path} has damaged rows (customers "
                             f"{', '.join(r[0] for r in short)}): shorter than their "
                             f"{len(layout.numbers)} numbers")
    return stamp, layout


def _close(connections: list[sqlite3.Connection]) -> None:
    for con in connections:
        con.close()


class SQLiteStore:
    """Read-only lookups on one file, checked when opened.

    The store keeps the file it opened: when ``materialize`` renames a new file into place, this
    object still reads the old one (the service opens the new file as another ``SQLiteStore`` and
    swaps). ``connections`` connections, opened together on that file, each used by one thread at
    a time: a lookup takes a free one, so the service's event loop does not wait while a large
    request's thread looks up its customers (it waits only when every one is busy)."""

    def __init__(self, path: str | Path, connections: int = 2):
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"online feature store {self.path} does not exist: run "
                             "`churn features materialize` first")
        before = _identity(self.path)
        cons: list[sqlite3.Connection] = []
        try:
            for _ in range(max(1, connections)):
                cons.append(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                            check_same_thread=False))
        except sqlite3.Error as exc:
            _close(cons)
            raise StoreError(f"online store {self.path} cannot be opened: {exc}") from exc
        try:
            self.stamp, self.layout = _read_stamp(cons[0], self.path)
        except sqlite3.Error as exc:
            _close(cons)
            raise StoreError(f"online store {self.path} is not a readable SQLite store: "
                             f"{exc}") from exc
        except StoreError:
            _close(cons)
            raise
        self.identity = _identity(self.path)
        if self.identity != before:
            _close(cons)
            raise StoreError(f"online store {self.path} changed while it was being opened")
        self._pool = [(threading.Lock(), con) for con in cons]

    def __len__(self) -> int:
        return self.stamp.customers

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), **self.stamp.describe()}

    def close(self) -> None:
        for lock, con in self._pool:
            with lock:
                con.close()

    def _take(self) -> tuple[threading.Lock, sqlite3.Connection]:
        """A connection no other thread is using, locked (the first one, waited for, when
        every one is busy)."""
        for lock, con in self._pool:
            if lock.acquire(blocking=False):
                return lock, con
        lock, con = self._pool[0]
        lock.acquire()
        return lock, con

    def get_many(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        layout = self.layout
        if layout is None:
            return {cid: (as_of, json.loads(payload)) for cid, as_of, payload in self._fetch(ids)}
        return {cid: (as_of, PackedRow(layout, payload).as_dict())
                for cid, as_of, payload in self._fetch(ids)}

    def get_rows(self, ids: list[str]) -> dict[str, tuple[str, PackedRow | dict[str, Any]]]:
        layout = self.layout
        if layout is None:
            return self.get_many(ids)
        return {cid: (as_of, PackedRow(layout, payload))
                for cid, as_of, payload in self._fetch(ids)}

    def _fetch(self, ids: list[str]) -> list[tuple[str, str, Any]]:
        if not ids:
            return []
        lock, con = self._take()
        try:
            found = []
            for start in range(0, len(ids), CHUNK):  # one chunk for the usual call (one id)
                chunk = ids[start:start + CHUNK]
                found += con.execute(_LOOKUP.format(marks=",".join("?" * len(chunk))),
                                     chunk).fetchall()
        finally:
            lock.release()
        return found

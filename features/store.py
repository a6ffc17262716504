"""The online feature store: each customer's latest features, looked up by id in the request path.

``FeatureStore`` is the interface (a Redis or database store can implement it); ``SQLiteStore`` is
the embedded default: one row per customer with the features as JSON, keyed by customer id.
A lookup by primary key takes tens of microseconds (``make bench-serve`` reports it).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.io import write_atomic

log = logging.getLogger(__name__)


class FeatureStore(Protocol):
    def get_many(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """{customer_id: (as_of, features)} for the ids found; missing ids are left out."""

    def __len__(self) -> int: ...


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
    """Write the latest row per customer (by ``cutoff``) to a SQLite store, atomically."""
    latest = frame.sort_values("cutoff").drop_duplicates("customer_id", keep="last")

    def write(tmp: Path) -> None:
        con = sqlite3.connect(tmp)
        con.execute("create table features (customer_id text primary key, as_of text not null, "
                    "payload text not null)")
        con.execute("create table meta (key text primary key, value text)")
        columns = [latest[c].tolist() for c in feature_names]
        as_of = latest["cutoff"].dt.date.astype(str).tolist()
        rows = ((cid, as_of[i], json.dumps({n: _clean(col[i]) for n, col in
                                             zip(feature_names, columns, strict=True)}))
                for i, cid in enumerate(latest["customer_id"].astype(str).tolist()))
        con.executemany("insert into features values (?, ?, ?)", rows)
        con.execute("insert into meta values ('features', ?)", (json.dumps(feature_names),))
        con.commit()
        con.close()

    path = write_atomic(path, write)
    log.info("materialised %d customers into %s", len(latest), path)
    return len(latest)


class SQLiteStore:
    """Read-only lookups; one connection per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"online feature store {self.path} does not exist: run "
                                    "`churn features materialize` first")
        self._local = threading.local()
        self._count = self._con().execute("select count(*) from features").fetchone()[0]

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def __len__(self) -> int:
        return self._count

    def get_many(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        if not ids:
            return {}
        con = self._con()
        out = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for cid, as_of, payload in con.execute(
                    f"select customer_id, as_of, payload from features where customer_id in "
                    f"({marks})", chunk):
                out[cid] = (as_of, json.loads(payload))
        return out

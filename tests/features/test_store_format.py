"""The online store's packed rows (format 2): each lookup gives what the JSON rows of format 1
gave (values, types and order), format 1 stores still read, and a later format or a damaged row
is refused in one line."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from features.packed_rows import PackedRow
from features.store import JSON_FORMAT, STORE_FORMAT, SQLiteStore, StoreError, _clean, materialize

NAMES = ["recency_days", "orders_90d", "has_contract", "plan", "huge_count", "opened_at",
         "maybe_count", "spend_365d"]


def _mixed() -> pd.DataFrame:
    """Every kind of column a feature frame may hold, with the awkward values."""
    n = 6
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "cutoff": pd.Timestamp("2025-01-01"),
        "recency_days": [1.5, np.nan, -0.0, np.inf, -np.inf, 1e300],
        "orders_90d": np.array([0, 3, -2, 7, 2**53, 1], dtype=np.int64),
        "has_contract": [True, False, True, True, False, False],
        "plan": ["basic", None, "premium", "basic", "gold", "basic"],
        "huge_count": np.array([1, 2**60, 3, 4, 5, 6], dtype=np.int64),  # not exact as a float
        "opened_at": pd.to_datetime(["2024-01-01", None, "2024-02-01", "2024-03-01",
                                     "2024-04-01", "2024-05-01"]),
        "maybe_count": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "spend_365d": np.array([0.1, 2.5, np.nan, 4.0, 5.0, 6.0], dtype=np.float32),
    })


def _as_json_rows(frame: pd.DataFrame) -> dict[str, dict]:
    """What a format 1 store gave for each customer: the JSON round trip of the cleaned row."""
    columns = {n: frame[n].tolist() for n in NAMES}
    return {cid: json.loads(json.dumps({n: _clean(columns[n][i]) for n in NAMES}))
            for i, cid in enumerate(frame["customer_id"])}


def _write_json_store(frame: pd.DataFrame, path) -> None:
    """A store as format 1 wrote it (a JSON object per row)."""
    con = sqlite3.connect(path)
    con.execute("create table features (customer_id text primary key, as_of text not null, "
                "payload text not null)")
    con.execute("create table meta (key text primary key, value text)")
    rows = [(cid, "2025-01-01", json.dumps(features))
            for cid, features in _as_json_rows(frame).items()]
    con.executemany("insert into features values (?, ?, ?)", rows)
    meta = {"format": JSON_FORMAT, "features": json.dumps(NAMES), "written_at": "2025-01-02",
            "content_hash": hashlib.sha256(b"x").hexdigest(), "customers": str(len(rows))}
    con.executemany("insert into meta values (?, ?)", meta.items())
    con.commit()
    con.close()


def test_packed_rows_give_what_the_json_rows_gave(tmp_path):
    frame = _mixed()
    materialize(frame, NAMES, tmp_path / "s.sqlite")
    store = SQLiteStore(tmp_path / "s.sqlite")
    assert store.layout is not None
    assert "huge_count" not in store.layout.numbers, "an integer a float cannot hold stays exact"
    assert {"recency_days", "orders_90d", "has_contract", "spend_365d"} <= set(
        store.layout.numbers)
    want = _as_json_rows(frame)
    ids = list(want) + ["nobody"]
    found, rows = store.get_many(ids), store.get_rows(ids)
    assert set(found) == set(rows) == set(want)
    for cid, features in want.items():
        got = found[cid][1]
        assert list(got.items()) == list(features.items()), cid
        assert [type(v) for v in got.values()] == [type(v) for v in features.values()], cid
        assert isinstance(rows[cid][1], PackedRow) and rows[cid][1].as_dict() == got
        assert found[cid][0] == rows[cid][0] == "2025-01-01"
    assert str(found["c3"][1]["recency_days"]) == "inf" and found["c1"][1]["plan"] is None
    assert found["c4"][1]["orders_90d"] == 2**53 and found["c1"][1]["huge_count"] == 2**60


def test_a_json_format_store_still_reads(tmp_path):
    frame = _mixed()
    _write_json_store(frame, tmp_path / "old.sqlite")
    store = SQLiteStore(tmp_path / "old.sqlite")
    assert store.layout is None and len(store) == len(frame)
    want = _as_json_rows(frame)
    assert {cid: f for cid, (_, f) in store.get_many(list(want)).items()} == want
    assert {cid: f for cid, (_, f) in store.get_rows(list(want)).items()} == want


def _set_format(path, value: str) -> None:
    con = sqlite3.connect(path)
    con.execute("update meta set value = ? where key = 'format'", (value,))
    con.commit()
    con.close()


def test_a_later_format_is_refused_in_one_line(tmp_path):
    path = tmp_path / "s.sqlite"
    materialize(_mixed(), NAMES, path)
    assert STORE_FORMAT != "churn-online-store/9"
    _set_format(path, "churn-online-store/9")
    with pytest.raises(StoreError) as err:
        SQLiteStore(path)
    message = str(err.value)
    assert "'churn-online-store/9'" in message and "newer churn" in message
    assert str(path) in message and "\n" not in message


def test_a_row_shorter_than_its_numbers_is_refused_naming_the_customer(tmp_path):
    path = tmp_path / "s.sqlite"
    materialize(_mixed(), NAMES, path)
    con = sqlite3.connect(path)
    con.execute("update features set payload = substr(payload, 1, 8) where customer_id = 'c2'")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as err:
        SQLiteStore(path)
    assert "damaged rows (customers c2)" in str(err.value) and "\n" not in str(err.value)


def test_the_version_follows_the_packed_content(tmp_path):
    frame = _mixed()
    materialize(frame, NAMES, tmp_path / "a.sqlite")
    materialize(frame, NAMES, tmp_path / "b.sqlite")
    changed = frame.assign(spend_365d=frame["spend_365d"] + 1)
    materialize(changed, NAMES, tmp_path / "c.sqlite")
    a, b, c = (SQLiteStore(tmp_path / f"{n}.sqlite").stamp.version for n in "abc")
    assert a == b and a != c


def test_a_store_without_packed_rows_is_read_through_get_many(tmp_path):
    """A store written to the older interface (``get_many`` only, e.g. a user's Redis store)
    still serves lookups by id: ``get_rows`` falls back to its dicts."""
    from features.store import get_rows

    frame = _mixed()
    materialize(frame, NAMES, tmp_path / "s.sqlite")
    packed = SQLiteStore(tmp_path / "s.sqlite")

    class OnlyGetMany:
        stamp = packed.stamp

        def get_many(self, ids):
            return packed.get_many(ids)

        def __len__(self):
            return len(packed)

    found = get_rows(OnlyGetMany(), ["c1", "nobody"])
    assert set(found) == {"c1"} and found["c1"] == packed.get_many(["c1"])["c1"]
    assert isinstance(get_rows(packed, ["c1"])["c1"][1], PackedRow)


def test_a_row_damaged_after_the_check_fails_with_a_value_error(tmp_path):
    """A row cut inside its text part passes the open check (its numbers are whole): reading it
    raises ValueError, which the service turns into that customer's error, not a 500."""
    from scoring.rows import RowReader  # noqa: F401 - the service reads stored rows with it

    path = tmp_path / "s.sqlite"
    materialize(_mixed(), NAMES, path)
    con = sqlite3.connect(path)
    size = 8 * len(SQLiteStore(path).layout.numbers)
    con.execute("update features set payload = substr(payload, 1, ?) where customer_id = 'c2'",
                (size + 3,))
    con.commit()
    con.close()
    row = SQLiteStore(path).get_rows(["c2"])["c2"][1]
    with pytest.raises(ValueError):
        row.as_dict()

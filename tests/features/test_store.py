"""The online feature store: materialise, look up, missing ids, atomic writes, the version stamp
and the refusal of files that are not a sound store."""

from __future__ import annotations

import os
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from features.store import CHUNK, SQLiteStore, StoreError, file_identity, materialize


def _frame():
    return pd.DataFrame({
        "customer_id": ["a", "b", "a"],
        "cutoff": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-02-01"]),
        "recency_days": [10.0, np.nan, 3.0],
        "plan": ["basic", "premium", "basic"],
    })


def test_materialise_keeps_the_latest_row_and_lookups_return_features(tmp_path):
    path = tmp_path / "s.sqlite"
    assert materialize(_frame(), ["recency_days", "plan"], path) == 2
    store = SQLiteStore(path)
    assert len(store) == 2
    found = store.get_many(["a", "b", "zz"])
    assert set(found) == {"a", "b"}, "a missing id is simply absent"
    assert found["a"] == ("2025-02-01", {"recency_days": 3.0, "plan": "basic"})
    assert found["b"][1]["recency_days"] is None


def test_one_id_and_lists_across_the_query_chunks_find_the_same_rows(tmp_path):
    """One query path for any number of ids: a single id (the usual API call), a list that
    fills chunks exactly, one more than that, repeated and missing ids all return each known
    customer's own row."""
    n = 2 * CHUNK + 1
    frame = pd.DataFrame({"customer_id": [f"c{k}" for k in range(n)],
                          "cutoff": pd.Timestamp("2025-01-01"),
                          "recency_days": np.arange(n, dtype=float)})
    path = tmp_path / "s.sqlite"
    materialize(frame, ["recency_days"], path)
    store = SQLiteStore(path)
    assert store.get_many(["c7"]) == {"c7": ("2025-01-01", {"recency_days": 7.0})}
    assert store.get_many(["nobody"]) == {}
    assert store.get_many([]) == {}
    for size in (CHUNK, CHUNK + 1, n):
        ids = [f"c{k}" for k in range(n - 1, n - 1 - size, -1)]
        found = store.get_many(ids)
        assert sorted(found) == sorted(ids), size
        assert all(found[f"c{k}"][1] == {"recency_days": float(k)} for k in range(n - size, n))
    ids = ["c3", "missing", "c3"] + [f"c{k}" for k in range(CHUNK)]  # c3 again in the 2nd chunk
    found = store.get_many(ids)
    assert set(found) == {f"c{k}" for k in range(CHUNK)}
    assert found["c3"] == ("2025-01-01", {"recency_days": 3.0})


def test_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="churn features materialize"):
        SQLiteStore(tmp_path / "none.sqlite")


def test_a_failed_write_leaves_the_old_store_in_place(tmp_path):
    path = tmp_path / "s.sqlite"
    materialize(_frame(), ["recency_days"], path)
    with pytest.raises(KeyError):
        materialize(_frame(), ["not_a_column"], path)
    assert SQLiteStore(path).get_many(["a"])["a"][1] == {"recency_days": 3.0}
    assert [p.name for p in tmp_path.iterdir()] == ["s.sqlite"]


@pytest.mark.parametrize("frame, names, words", [
    (_frame(), ["recency_days", "plan", "recency_days"], "in the feature list: recency_days"),
    (_frame().set_axis(["customer_id", "cutoff", "plan", "plan"], axis=1), ["plan"],
     "as frame columns: plan"),
], ids=["listed twice", "two columns"])
def test_feature_names_given_twice_are_refused_before_anything_is_written(tmp_path, frame, names,
                                                                          words):
    """A store with a name twice is one no reader opens (it said its stamp was damaged): the
    writer refuses it up front, in one line naming the names, and leaves no file."""
    from features.errors import BadInput

    with pytest.raises(BadInput, match="feature names given twice") as caught:
        materialize(frame, names, tmp_path / "s.sqlite")
    assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- the version stamp ---------------------------------------------------------------------------

def test_the_store_carries_a_version_stamp_that_follows_its_content(tmp_path):
    materialize(_frame(), ["recency_days", "plan"], tmp_path / "one.sqlite")
    materialize(_frame(), ["recency_days", "plan"], tmp_path / "same.sqlite")
    changed = _frame().assign(recency_days=[10.0, 1.0, 4.0])
    materialize(changed, ["recency_days", "plan"], tmp_path / "other.sqlite")
    one, same, other = (SQLiteStore(tmp_path / f"{n}.sqlite") for n in ("one", "same", "other"))
    assert one.stamp.customers == 2 and one.stamp.features == 2
    assert one.stamp.written_at.startswith(str(pd.Timestamp.now(tz="UTC").year))
    assert len(one.stamp.version) == 12
    assert one.stamp.version == same.stamp.version, "same rows, same version"
    assert one.stamp.version != other.stamp.version, "a changed value must change the version"
    assert one.describe()["version"] == one.stamp.version


def test_one_lookup_does_not_wait_for_another_threads_lookup(tmp_path):
    """The service looks up small requests on its event loop and large ones in a thread: the
    loop must not stand still while the thread's lookup runs (a single locked connection made
    it wait). The large lookup is held inside SQLite until the small one has answered."""
    import threading

    path = tmp_path / "s.sqlite"
    materialize(_frame(), ["recency_days", "plan"], path)
    store = SQLiteStore(path)
    inside, release = threading.Event(), threading.Event()

    def hold() -> int:  # SQLite's progress callback: only the large lookup stops in it
        if threading.current_thread().name == "large":
            inside.set()
            release.wait(30)
        return 0

    for _, con in store._pool:
        con.set_progress_handler(hold, 1)
    large = threading.Thread(target=store.get_many, args=(["a", "b"],), name="large")
    large.start()
    assert inside.wait(30)
    answer: dict = {}
    small = threading.Thread(target=lambda: answer.update(store.get_many(["b", "a"])))
    small.start()
    small.join(30)  # a hang detector, not a timing: the old store never answered here
    done = not small.is_alive()
    release.set()
    large.join(30)
    small.join(30)
    assert done, "a lookup waited for another thread's lookup to finish"
    assert answer["a"] == ("2025-02-01", {"recency_days": 3.0, "plan": "basic"})
    store.close()


def test_a_store_keeps_reading_the_file_it_opened_after_a_rewrite(tmp_path):
    """materialize renames a new file into place: an open store still sees the old rows, and the
    file identity (what the service checks every few seconds) changes."""
    path = tmp_path / "s.sqlite"
    materialize(_frame(), ["recency_days"], path)
    old = SQLiteStore(path)
    before = file_identity(path)
    materialize(_frame().assign(recency_days=[1.0, 2.0, 99.0]), ["recency_days"], path)
    assert file_identity(path) != before
    assert old.get_many(["a"])["a"][1] == {"recency_days": 3.0}
    assert SQLiteStore(path).get_many(["a"])["a"][1] == {"recency_days": 99.0}
    assert file_identity(tmp_path / "gone.sqlite") is None


# --- files that are not a sound store are refused, in one line ----------------------------------

def _garbage(path):
    path.write_bytes(os.urandom(8192))


def _foreign(path):
    con = sqlite3.connect(path)
    con.execute("create table orders (id integer primary key, amount real)")
    con.commit()
    con.close()


def _other_columns(path):
    con = sqlite3.connect(path)
    con.execute("create table features (id text, blob text)")
    con.execute("create table meta (key text primary key, value text)")
    con.commit()
    con.close()


def _unstamped(path):
    """A store as written before the stamp existed."""
    materialize(_frame(), ["recency_days"], path)
    con = sqlite3.connect(path)
    con.execute("delete from meta where key != 'features'")
    con.commit()
    con.close()


def _rows_removed(path):
    materialize(_frame(), ["recency_days"], path)
    con = sqlite3.connect(path)
    con.execute("delete from features where customer_id = 'b'")
    con.commit()
    con.close()


def _truncated(path):
    big = pd.DataFrame({"customer_id": [f"c{i}" for i in range(5000)],
                        "cutoff": pd.Timestamp("2025-01-01"), "recency_days": 1.0})
    materialize(big, ["recency_days"], path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _pages_overwritten(path):
    big = pd.DataFrame({"customer_id": [f"c{i}" for i in range(5000)],
                        "cutoff": pd.Timestamp("2025-01-01"), "recency_days": 1.0})
    materialize(big, ["recency_days"], path)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(os.urandom(16384))


@pytest.mark.parametrize("make, words", [
    (_garbage, "is not a readable SQLite store"),
    (_foreign, r"is not a churn feature store \(tables: orders\)"),
    (_other_columns, r"has features columns \('id', 'blob'\)"),
    (_unstamped, "has no churn-online-store/1 version stamp"),
    (_rows_removed, "holds 1 customers, its stamp says 2"),
    (_truncated, "malformed|is damaged"),
    (_pages_overwritten, "malformed|is damaged"),
], ids=["garbage", "foreign sqlite", "other columns", "no stamp", "rows removed", "truncated",
        "pages overwritten"])
def test_a_file_that_is_not_a_sound_store_is_refused_in_one_line(tmp_path, make, words):
    path = tmp_path / "s.sqlite"
    make(path)
    with pytest.raises(StoreError) as err:
        SQLiteStore(path)
    message = str(err.value)
    assert re.search(words, message) and str(path) in message, message
    assert "\n" not in message


# --- `churn serve` checks the store and the keys before it starts anything -----------------------

LONG_KEY = "k" * 32


def test_serve_refuses_to_start_without_an_api_key_or_a_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from churn.cli import app

    monkeypatch.delenv("CHURN_API_KEY", raising=False)
    monkeypatch.delenv("CHURN_API_KEY_FILE", raising=False)
    run = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "no API key" in run.output
    monkeypatch.setenv("CHURN_API_KEY", LONG_KEY)
    run = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "does not exist" in run.output
    run = CliRunner().invoke(app, ["serve", "--workers", "0", "--store",
                                   str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "workers" in run.output


@pytest.mark.parametrize("make, words", [
    (_garbage, "is not a readable SQLite store"),
    (_foreign, "is not a churn feature store"),
    (_unstamped, "has no churn-online-store/1 version stamp"),
], ids=["garbage", "foreign sqlite", "no stamp"])
def test_serve_refuses_a_store_that_is_not_sound_in_one_line(tmp_path, monkeypatch, make, words):
    import subprocess

    from typer.testing import CliRunner

    from churn.cli import app

    started = []
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: started.append(a) or 0)
    monkeypatch.setenv("CHURN_API_KEY", LONG_KEY)
    make(tmp_path / "s.sqlite")
    run = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "s.sqlite")])
    assert run.exit_code == 2, run.output
    lines = run.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], run.output
    assert not started, "the server was started"


@pytest.mark.parametrize("raw", ["two", "0", "65", "1.5"])
def test_a_bad_worker_count_is_refused_not_replaced(raw):
    from serving.settings import ServeSettingsError, workers_from_env

    with pytest.raises(ServeSettingsError, match="CHURN_WORKERS"):
        workers_from_env({"CHURN_WORKERS": raw})
    assert workers_from_env({}) == 1 and workers_from_env({"CHURN_WORKERS": "3"}) == 3

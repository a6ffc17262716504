"""The online feature store: materialise, look up, missing ids, atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.store import SQLiteStore, materialize


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


def test_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="churn features materialize"):
        SQLiteStore(tmp_path / "none.sqlite")


def test_a_failed_write_leaves_the_old_store_in_place(tmp_path):
    path = tmp_path / "s.sqlite"
    materialize(_frame(), ["recency_days"], path)
    with pytest.raises(KeyError):
        materialize(_frame(), ["not_a_column"], path)
    assert SQLiteStore(path).get_many(["a"])["a"][1] == {"recency_days": 3.0}
    assert [p.name for p in tmp_path.iterdir()] == ["s.sqlite"]


def test_serve_refuses_to_start_without_an_api_key_or_a_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from churn.cli import app

    monkeypatch.delenv("CHURN_API_KEY", raising=False)
    monkeypatch.delenv("CHURN_API_KEY_FILE", raising=False)
    run = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "no API key" in run.output
    monkeypatch.setenv("CHURN_API_KEY", "k")
    run = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "does not exist" in run.output
    run = CliRunner().invoke(app, ["serve", "--workers", "0", "--store",
                                   str(tmp_path / "none.sqlite")])
    assert run.exit_code == 2 and "workers" in run.output


@pytest.mark.parametrize("raw", ["two", "0", "65", "1.5"])
def test_a_bad_worker_count_is_refused_not_replaced(raw):
    from serving.settings import ServeSettingsError, workers_from_env

    with pytest.raises(ServeSettingsError, match="CHURN_WORKERS"):
        workers_from_env({"CHURN_WORKERS": raw})
    assert workers_from_env({}) == 1 and workers_from_env({"CHURN_WORKERS": "3"}) == 3

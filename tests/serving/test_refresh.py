"""What a worker serves, in process: the store holder's swaps and refusals, the local model copy."""

from __future__ import annotations

import json
import os

import pytest

from features.store import materialize
from serving.refresh import StoreHolder
from tests.features.test_store import _foreign, _frame, _garbage


def test_the_store_holder_swaps_good_files_and_refuses_bad_ones(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    materialize(_frame(), ["recency_days"], path)
    holder = StoreHolder(path)
    first = holder.store
    assert holder.status()["version"] == first.stamp.version and holder.status()["refused"] is None
    assert holder.check() is False, "nothing changed: nothing opened"

    _garbage(tmp_path / "bad")
    os.replace(tmp_path / "bad", path)
    with caplog.at_level("ERROR", logger="churn.service"):
        assert holder.check() is False and holder.check() is False
    assert holder.store is first, "the old store keeps serving"
    assert "not a readable SQLite store" in holder.status()["refused"]["error"]
    assert sum("refused the online store file" in r.message for r in caplog.records) == 1

    materialize(_frame().assign(recency_days=[5.0, 6.0, 7.0]), ["recency_days"], path)
    assert holder.check() is True
    assert holder.store is not first and holder.status()["refused"] is None
    assert holder.store.get_many(["a"])["a"][1] == {"recency_days": 7.0}
    assert first.get_many(["a"])["a"][1] == {"recency_days": 3.0}, "in-flight readers still read"

    path.unlink()
    assert holder.check() is False and holder.status()["refused"]["error"] == \
        "the store file is missing"
    assert holder.store.get_many(["a"]), "a deleted file does not stop the open store"


@pytest.mark.parametrize("make", [_garbage, _foreign, None], ids=["garbage", "foreign", "missing"])
def test_a_worker_starting_with_a_bad_store_waits_for_a_good_one(tmp_path, make):
    path = tmp_path / "s.sqlite"
    if make:
        make(path)
    holder = StoreHolder(path)  # no exception: the worker starts, not ready
    assert holder.store is None and holder.status()["refused"]["error"]
    materialize(_frame(), ["recency_days"], path)
    assert holder.check() is True and holder.store is not None


def test_the_local_model_copy_is_kept_pruned_and_read_back(served, tmp_path):
    from scoring.model_cache import ModelCache

    tracking = served["MLFLOW_TRACKING_URI"]
    cache = ModelCache(tmp_path / "cache", "models:/churn@champion", tracking)
    assert cache.latest() is None
    loaded = cache.fetch()
    copy, saved_at = cache.latest()
    assert (copy.name, copy.version, copy.run_id) == (loaded.name, loaded.version, loaded.run_id)
    assert copy.scorer.features == loaded.scorer.features and saved_at
    assert (copy.uplift is None) == (loaded.uplift is None)
    for v in ("97", "98", "99"):  # older copies beyond two are removed
        (cache.folder / f"v{v}-x").mkdir()
    cache.fetch()
    assert len(list(cache.folder.glob("v*"))) == 2
    other = ModelCache(tmp_path / "cache", "models:/churn@champion", "http://elsewhere:5000")
    assert other.latest() is None, "a copy belongs to one model URI and tracking server"
    pointer = json.loads((cache.folder / "current.json").read_text())
    (cache.folder / pointer["copy"] / "artifacts" / "scorer" / "scorer.json").write_text("{")
    assert cache.latest() is None, "a damaged copy is no copy"

"""A customer read from the online store's packed row (``RowReader.read_stored``, the API's by-id
path) gives the same vector and the same problems as the dict the JSON store gave, read by
``RowReader.read`` — however the store holds each feature (number, text, absent) and whatever the
values (missing, infinite, out of range, unseen categories)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.packed_rows import PackedRow
from features.spec import CATEGORY, NUMBER, FeatureSpec
from features.store import SQLiteStore, _clean, materialize
from scoring.rows import RowReader
from scoring.scorer import Calibrator, ChurnScorer


def _spec(name: str, unit: str, kind: str = NUMBER, **kw) -> FeatureSpec:
    return FeatureSpec(name, "f", None, name, unit, "{value}", kind, **kw)


SPECS = [_spec("orders_90d", "orders", low=0.0, high=1200.0), _spec("plan", "", CATEGORY),
         _spec("email_open_rate_90d", "share"), _spec("has_contract", "flag"),
         _spec("segment", "", CATEGORY), _spec("recency_days", "days", low=0.0, high=5000.0),
         _spec("not_in_store", "orders")]


@pytest.fixture(scope="module")
def reader() -> RowReader:
    scorer = ChurnScorer([s.name for s in SPECS], [s.kind for s in SPECS],
                         {"plan": ["basic", "premium"], "segment": ["2", "1", "3.0"]}, None,
                         Calibrator("identity"), SPECS)
    return RowReader(scorer)


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def some(values, p_missing=0.2):
        v = np.asarray(values, dtype=float)
        return np.where(rng.random(n) < p_missing, np.nan, v)

    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "cutoff": pd.Timestamp("2025-01-01"),
        "orders_90d": rng.integers(-3, 1300, n),  # ints; some below / above the limits
        "plan": rng.choice(["basic", "premium", "gold", None], n),
        "email_open_rate_90d": some(rng.choice([0.1, 0.5, np.inf, -np.inf, 1.5], n,
                                               p=[0.4, 0.4, 0.05, 0.05, 0.1])),
        "has_contract": rng.random(n) < 0.5,
        "segment": rng.choice(["1", "2", "3.0", "9"], n),
        "recency_days": some(rng.uniform(-10, 6000, n)),
        "store_only": rng.random(n),  # a feature this model does not use
    })


def _json_dicts(frame: pd.DataFrame, names: list[str]) -> dict[str, dict]:
    columns = {n: frame[n].tolist() for n in names}
    return {cid: json.loads(json.dumps({n: _clean(columns[n][i]) for n in names}))
            for i, cid in enumerate(frame["customer_id"])}


VARIANTS = {
    "as usual": lambda f: f,
    "a model number stored as text": lambda f: f.assign(
        recency_days=f["recency_days"].map(lambda v: None if np.isnan(v) else str(v))),
    "a model category stored as a number": lambda f: f.assign(
        segment=f["segment"].map(float)),
    "a model number stored as booleans": lambda f: f.assign(orders_90d=f["orders_90d"] > 5),
    "everything missing": lambda f: f.assign(
        orders_90d=np.nan, plan=None, email_open_rate_90d=np.nan, has_contract=np.nan,
        segment=None, recency_days=np.nan),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_stored_row_reads_as_its_json_dict(reader, tmp_path, variant):
    frame = VARIANTS[variant](_frame())
    names = [c for c in frame.columns if c not in ("customer_id", "cutoff")]
    materialize(frame, names, tmp_path / "s.sqlite")
    store = SQLiteStore(tmp_path / "s.sqlite")
    want = _json_dicts(frame, names)
    rows = store.get_rows(list(want))
    fast = 0
    for cid, features in want.items():
        row = rows[cid][1]
        assert isinstance(row, PackedRow)
        want_x, want_problems = reader.read(features, ignore_unknown=True)
        x, problems = reader.read_stored(row)
        assert x.tobytes() == want_x.tobytes(), (variant, cid, features)
        assert problems == want_problems, (variant, cid, features)
        fast += reader._plan(row.layout) is not None
    some_problems = [reader.read_stored(rows[c][1])[1] for c in want]
    if variant == "as usual":
        assert fast == len(want), "the usual store takes the packed path"
        assert any(some_problems) and not all(some_problems), "the cases cover both outcomes"
    if variant in ("a model number stored as text", "a model category stored as a number"):
        assert fast == 0, "a dict's per-feature checks are needed"


def test_a_dict_from_an_older_store_is_read_as_before(reader):
    features = {"orders_90d": 3, "plan": "premium", "recency_days": 40.0, "zz": 1.0}
    x, problems = reader.read_stored(features)
    want_x, want_problems = reader.read(features, ignore_unknown=True)
    assert x.tobytes() == want_x.tobytes() and problems == want_problems == []

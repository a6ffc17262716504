"""The batch job's input: chunks read ahead, each with the model's matrix (Arrow straight into the
matrix for plain numbers) equal to what the scorer makes of the whole table."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from features.spec import CATEGORY, NUMBER
from jobs.batch_output import BatchError
from jobs.batch_read import model_chunks, read_ahead
from scoring.scorer import Calibrator, ChurnScorer

FEATURES = ["orders_90d", "spend_90d", "plan", "flag", "count_i32", "as_text", "sparse_count",
            "segment", "small", "share"]
KINDS = [NUMBER, NUMBER, CATEGORY, NUMBER, NUMBER, NUMBER, NUMBER, CATEGORY, NUMBER, NUMBER]


def _scorer() -> ChurnScorer:
    """Only the encoding is exercised: the feature names, kinds and training categories."""
    return ChurnScorer(FEATURES, KINDS, {"plan": ["basic", "premium"], "segment": ["b", "a"]},
                       booster=None, calibrator=Calibrator("identity"), specs=[])


def _table(n: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "cutoff": pd.Timestamp("2026-01-01"),
        "orders_90d": rng.integers(0, 9, n),  # int64
        "spend_90d": np.where(rng.random(n) < 0.3, np.nan, rng.normal(50, 9, n)),
        "plan": rng.choice(["basic", "premium", "gold", None], n),  # "gold": never trained on
        "flag": rng.random(n) < 0.5,  # a boolean feature
        "count_i32": rng.integers(0, 5, n).astype(np.int32),
        "as_text": rng.choice(["1.5", "2", None], n).astype(object),  # numbers stored as text
        "sparse_count": pd.array(np.where(rng.random(n) < 0.4, None, rng.integers(0, 4, n)),
                                 dtype="Int64"),  # integers with missing values
        "segment": rng.choice(["a", "b"], n),
        "small": rng.normal(size=n).astype(np.float32),
        "share": rng.uniform(size=n),
        "not_a_feature": "x",
    })


def test_parquet_chunks_give_the_scorers_matrix_in_order(tmp_path):
    table = _table()
    table.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=4)
    scorer = _scorer()
    got = list(model_chunks(tmp_path / "t.parquet", scorer, 3, ["customer_id", "cutoff"]))
    assert [len(c) for c in got] == [3, 3, 3, 2]
    x = np.vstack([c.x for c in got])
    assert all(c.x.flags.f_contiguous for c in got)
    want = scorer.matrix(pd.read_parquet(tmp_path / "t.parquet"), order="F")
    assert np.array_equal(x, want, equal_nan=True)
    assert np.isnan(want).any() and (want != np.round(want)).any(), "the probe has NaN and fractions"
    frames = pd.concat([c.frame for c in got], ignore_index=True)
    assert frames["customer_id"].tolist() == table["customer_id"].tolist()
    assert "cutoff" in frames and "plan" in frames and "orders_90d" not in frames
    # a CSV file and an in-memory frame: read by pandas, the same matrix
    table.to_csv(tmp_path / "t.csv", index=False)
    for source in (tmp_path / "t.csv", table):
        chunks = list(model_chunks(source, scorer, 4, ["customer_id"]))
        assert np.array_equal(np.vstack([c.x for c in chunks]),
                              scorer.matrix(pd.concat([c.frame for c in chunks]), order="F"),
                              equal_nan=True)


@pytest.mark.parametrize("change,words", [
    (lambda t: t.drop(columns=["share", "plan"]), "2 feature columns are missing: plan, share"),
    (lambda t: t.assign(spend_90d=["lots"] * len(t)), "column spend_90d must be numeric"),
], ids=["missing columns", "text in a number column"])
def test_a_table_the_model_cannot_read_is_a_batch_error_naming_the_column(tmp_path, change,
                                                                          words):
    change(_table()).to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(BatchError, match=words):
        next(model_chunks(tmp_path / "t.parquet", _scorer(), 5, ["customer_id"]))


def test_read_ahead_reads_at_most_one_item_beyond_the_one_in_use():
    made = []

    def items():
        for k in range(8):
            made.append(k)
            yield k

    for taken, item in enumerate(read_ahead(items()), start=1):
        time.sleep(0.02)  # time for a reader that ran ahead to do so
        assert item == taken - 1
        assert len(made) <= taken + 1, (taken, made)
    assert made == list(range(8))


def test_read_ahead_stops_its_thread_when_the_consumer_fails():
    def consume():
        for item in read_ahead(iter(range(100))):
            if item == 3:
                raise ValueError("scoring failed")

    with pytest.raises(ValueError, match="scoring failed"):
        consume()
    assert not [t for t in threading.enumerate() if t.name == "batch-read-ahead"]


def test_arrow_memory_held_while_reading_does_not_grow_with_the_table(tmp_path):
    """Reading a Parquet table chunk by chunk holds about one row group's buffers, not the
    file's (pre-buffered reading kept every row group read so far until the end: at 1M rows a
    fifth of a GB)."""
    import pyarrow as pa

    path = tmp_path / "t.parquet"
    _table(80_000).to_parquet(path, index=False, row_group_size=1_000)
    start = pa.total_allocated_bytes()
    held = [pa.total_allocated_bytes() - start
            for _ in model_chunks(path, _scorer(), 1_000, ["customer_id"])]
    assert len(held) == 80
    size = path.stat().st_size
    assert max(held) < size / 4, f"{max(held):,} bytes held while reading a {size:,}-byte file"

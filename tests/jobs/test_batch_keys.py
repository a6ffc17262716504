"""Row keys: each row's cutoff day as text, and every key the whole input holds more than once,
exactly, whatever the column types, the chunking and the hashes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import jobs.batch_keys as batch_keys
from jobs.batch_keys import cutoff_text, duplicated_keys
from jobs.batch_output import BatchConfig


@pytest.mark.parametrize("cutoff", [
    pd.to_datetime(["2025-01-01", "2025-01-01 09:30", "2025-01-01", "2025-02-01"],
                   format="ISO8601"),
    pd.Series(["2025-01-01", "2025-01-01", "2025-01-01", "2025-02-01"], dtype=object),
], ids=["timestamps", "text"])
def test_duplicate_keys_are_found_by_their_text_whatever_the_column_types(cutoff):
    """The first pass hashes the id's text and the cutoff's day: an id stored as the number 1
    and as the text "1" on the same cutoff day is one key, as the output writes it."""
    frame = pd.DataFrame({"cutoff": cutoff,
                          "customer_id": pd.Series([1, "1", 2, 1], dtype=object)})
    for size in (1, 3):
        assert duplicated_keys(frame, BatchConfig(chunk_size=size)) == {"1@2025-01-01"}, size


def test_each_row_keeps_its_own_cutoff_day_as_text():
    """Timestamps become their day (several days in one chunk, missing ones ""), in row order;
    text dates are parsed the same way."""
    stamps = pd.Series(pd.to_datetime(["2025-01-01 00:00", None, "2024-03-02 13:30",
                                       "2025-01-01 23:59", None, "2024-03-02 00:00"]))
    want = ["2025-01-01", "", "2024-03-02", "2025-01-01", "", "2024-03-02"]
    assert cutoff_text(stamps).tolist() == want
    assert cutoff_text(stamps.astype(object).astype(str).replace("NaT", "x")).tolist() == want
    assert cutoff_text(stamps[:0]).tolist() == []


def _keys_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "a", "c", "b", "d", None, None, "e", "e"],
        "cutoff": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01",
                                  "2025-04-01", "2025-01-01", "2025-01-01", "2025-01-01",
                                  "2025-01-01", "2025-01-01 12:00"], format="ISO8601"),
    })


@pytest.mark.parametrize("colliding", [False, True])
def test_duplicate_keys_are_exact_whatever_the_hashes_and_chunks(monkeypatch, colliding):
    """The first pass compares 64-bit hashes; keys are confirmed as text, so even a hash that
    made every key collide quarantines only the true duplicates (same id, same cutoff day)."""
    if colliding:
        monkeypatch.setattr(batch_keys, "_key_hashes", lambda keys: np.zeros(len(keys), np.uint64))
    for size in (1, 3, 100):
        got = duplicated_keys(_keys_frame(), BatchConfig(chunk_size=size))
        assert got == {"a@2025-01-01", "e@2025-01-01"}, size
    unique = _keys_frame().iloc[[0, 1, 3, 5]]
    assert duplicated_keys(unique, BatchConfig(chunk_size=2)) == set()

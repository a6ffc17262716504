"""Encoding a feature table into the model's matrix: blocks of plain numbers and single columns
give the values of the column-by-column definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.spec import CATEGORY, NUMBER
from scoring.scorer import ScoringInputError, encode_frame


def _one_by_one(frame, features, kinds, categories):
    """The definition: numbers as floats (missing = NaN, booleans as 0/1), a category as its
    training position when its text is a training category, else missing."""
    out = np.full((len(frame), len(features)), np.nan)
    for j, (name, kind) in enumerate(zip(features, kinds, strict=True)):
        for i, v in enumerate(frame[name].tolist()):
            if pd.isna(v):
                continue
            if kind == CATEGORY:
                out[i, j] = categories[name].index(str(v)) if str(v) in categories[name] else np.nan
            else:
                out[i, j] = float(v)
    return out


def test_mixed_columns_encode_like_the_definition():
    frame = pd.DataFrame({
        "orders_90d": np.array([1, 0, 7, 3], dtype=np.int64),
        "spend_90d": [10.5, np.nan, 0.0, np.inf],
        "plan": ["basic", None, "gold", "premium"],  # "gold" was never seen in training
        "flag": [True, False, True, False],
        "count_i32": np.array([4, 5, 6, 7], dtype=np.int32),
        "as_text": pd.Series(["1.5", None, "2", "3"], dtype=object),
        "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
        "segment": pd.Series([1, 2, None, 1], dtype=object),  # categories matched as text
        "last": [0.25, 0.5, np.nan, 1.0],
        "unused": ["x", "y", "z", "w"],
    })
    features = ["orders_90d", "spend_90d", "plan", "flag", "count_i32", "as_text", "nullable",
                "segment", "last"]
    kinds = [NUMBER, NUMBER, CATEGORY, NUMBER, NUMBER, NUMBER, NUMBER, CATEGORY, NUMBER]
    categories = {"plan": ["basic", "premium"], "segment": ["2", "1"]}
    want = _one_by_one(frame, features, kinds, categories)
    for order in ("C", "F"):
        got = encode_frame(frame, features, kinds, categories, order)
        assert np.array_equal(got, want, equal_nan=True), order
        assert got.flags.c_contiguous if order == "C" else got.flags.f_contiguous


def test_a_text_value_in_a_number_column_is_named():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": pd.Series(["3", "lots"], dtype=object)})
    with pytest.raises(ScoringInputError, match=r"column b must be numeric.*lots"):
        encode_frame(frame, ["a", "b"], [NUMBER, NUMBER], {})

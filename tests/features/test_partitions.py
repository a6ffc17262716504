"""A part's id range (which parts' ids may overlap): by text, missing ids skipped."""

from __future__ import annotations

import pandas as pd
import pytest

from features.partitions import id_range, overlapping


@pytest.mark.parametrize(("ids", "expected"), [
    (pd.Series(["C3", None, "C10", "C2"], dtype="str"), ("C10", "C3")),  # text order, not numbers
    (pd.Series(["b", "a", "c"], dtype="str").astype(
        pd.CategoricalDtype(["c", "b", "a"], ordered=True)), ("a", "c")),  # not category order
    (pd.Series(["é", "z", "Z"], dtype="str"), ("Z", "é")),  # code points
    (pd.Series([None, None], dtype="str"), None),
    (pd.Series([], dtype="str"), None),
    (pd.Series(["b", None, "a"], dtype=object), ("a", "b")),
])
def test_id_range_is_the_smallest_and_largest_id_as_text(ids, expected):
    assert id_range(pd.DataFrame({"customer_id": ids}), "customer_id") == expected
    assert id_range(pd.DataFrame({"other": [1]}), "customer_id") is None


def test_ranges_overlap_only_when_an_id_could_be_in_two_parts():
    assert not overlapping([("C00", "C09"), None, ("C10", "C19")])
    assert overlapping([("C10", "C19"), ("C00", "C10")])

"""Events sorted by (customer, time): the fast path for time-ordered logs gives lexsort's order."""

from __future__ import annotations

import numpy as np
import pytest

from features.events import sort_order


@pytest.mark.parametrize("customers", [5, 70_000, 2**33])  # one, two and three 16-bit digits
@pytest.mark.parametrize("time_ordered", [True, False])
def test_sort_order_is_lexsorts_with_ties_in_place(customers, time_ordered):
    rng = np.random.default_rng(customers)
    codes = rng.integers(0, customers, 50_000)
    ts = rng.integers(0, 500, 50_000)  # many equal times: ties must keep their order
    if time_ordered:
        ts = np.sort(ts)
    np.testing.assert_array_equal(sort_order(codes, ts), np.lexsort((ts, codes)))


def test_sort_order_of_no_or_one_event():
    assert list(sort_order(np.array([], dtype=np.int64), np.array([], dtype=np.int64))) == []
    assert list(sort_order(np.array([3]), np.array([7]))) == [0]

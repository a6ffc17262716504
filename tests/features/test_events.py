"""Events sorted by (customer, time): the fast path for time-ordered logs gives lexsort's order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.events import arrow_text, customer_codes, sort_order


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


@pytest.mark.parametrize("case,events,customers,expected", [
    ("one width: matched as integers", ["C02", "C01", "C09", "C02", "C03"],
     ["C01", "C02", "C03"], [1, 0, -1, 1, 2]),
    ("8 bytes, accents counted in bytes", ["é1234567", "x1234567", "é1234567", "12345678"],
     ["12345678", "é1234567"], [1, -1, 1, 0]),
    ("widths differ", ["7", "77", "777", "7"], ["77", "7"], [1, 0, -1, 1]),
    ("events of another width than the customers", ["C1", "C10"], ["C10", "C11"], [-1, 0]),
    ("longer than 8 bytes", ["customer-2", "customer-1", "customer-3"],
     ["customer-1", "customer-2"], [1, 0, -1]),
    ("a missing id", ["C1", None, "C2"], ["C2", "C1"], [1, -1, 0]),
    ("an id listed twice: its first position", ["C2", "C1"], ["C1", "C2", "C1"], [1, 0]),
    ("no customers", ["C1"], [], [-1]),
])
def test_customer_codes_find_each_events_customer(case, events, customers, expected):
    codes = customer_codes(pd.Series(events, dtype="str"), pd.Index(pd.Series(customers,
                                                                                 dtype="str")))
    assert codes.dtype == np.int64 and codes.tolist() == expected, case
    sliced = customer_codes(pd.Series(["pad"] + events, dtype="str").iloc[1:],
                            pd.Index(pd.Series(customers, dtype="str")))
    assert sliced.tolist() == expected, case
    coded = customer_codes(pd.Series(events, dtype="str").astype("category"),
                           pd.Index(pd.Series(customers, dtype="str")))
    assert coded.dtype == np.int64 and coded.tolist() == expected, case


def test_arrow_text_gives_one_text_array_with_missing_values_null():
    chunked = pd.Series(["b", None, "a"], dtype="string[pyarrow]")
    for values, want in [(chunked, ["b", None, "a"]), (pd.Index([3, 1]), ["3", "1"]),
                         (pd.Series(["x", "y"]).astype("category"), ["x", "y"])]:
        array = arrow_text(values)
        assert isinstance(array, pa.Array), type(array)
        assert pa.types.is_string(array.type) or pa.types.is_large_string(array.type), array.type
        assert array.to_pylist() == want


def test_one_lookup_matches_every_table_as_customer_codes_does():
    """The customers' side worked out once serves tables of other id widths, categoricals and
    ids listed twice alike."""
    from features.events import CustomerLookup

    for customers in (["C1", "C2", "C10"], ["C1", "C2", "C1"], ["customer-1", "C2"]):
        index = pd.Index(pd.Series(customers, dtype="str"))
        lookup = CustomerLookup(index)
        for events in (["C2", "C1", "C9"], ["C10", None, "C1"], ["customer-1", "C2"], []):
            for ids in (pd.Series(events, dtype="str"),
                        pd.Series(events, dtype="str").astype("category")):
                assert lookup.codes(ids).tolist() == customer_codes(ids, index).tolist() == [
                    customers.index(e) if e in customers else -1 for e in events], (customers, events)

"""The contract's types given to raw columns, and what does not convert named with its rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.coercion import CODED, coerce_table
from features.contract import TABLES, _Checker


def test_each_kind_of_column_gets_its_contract_type_and_the_raw_frame_is_untouched():
    raw = pd.DataFrame({
        "customer_id": [7.0, 8.0, np.nan],  # whole numbers read as floats: ids as text
        "opened_ts": ["2024-01-02 10:00", "2024-01-03T00:00:00+02:00", None],
        "closed_ts": pd.to_datetime(["2024-01-05", None, "2024-01-06"]).tz_localize("Europe/Paris"),
        "is_complaint": ["Yes", " false ", None],
        "escalated": [True, False, True],
        "other": ["kept", "as", "is"],
    })
    before = raw.copy()
    check = _Checker()
    typed = coerce_table(TABLES["tickets"], raw, check)
    assert check.problems == []
    assert typed["customer_id"].tolist()[:2] == ["7", "8"] and pd.isna(typed["customer_id"][2])
    assert typed["opened_ts"].dtype == "datetime64[ns]"
    assert typed["opened_ts"].tolist()[:2] == [pd.Timestamp("2024-01-02 10:00"),
                                               pd.Timestamp("2024-01-02 22:00")]  # in UTC
    assert pd.isna(typed["opened_ts"][2])
    assert typed["closed_ts"][0] == pd.Timestamp("2024-01-04 23:00")  # Paris midnight in UTC
    assert typed["is_complaint"].dtype == "boolean"
    assert typed["is_complaint"].tolist()[:2] == [True, False] and pd.isna(typed["is_complaint"][2])
    assert typed["escalated"].dtype == "boolean"
    assert typed["other"].tolist() == ["kept", "as", "is"]
    pd.testing.assert_frame_equal(raw, before)


def test_values_that_do_not_convert_name_the_table_column_and_rows():
    raw = pd.DataFrame({"customer_id": ["a", "b", "c"],
                        "order_ts": ["2024-01-01", "not a time", "2024-01-03"],
                        "amount": ["1.5", "2", "lots"],
                        "order_id": [1.0, 2.5, 3.0]})
    check = _Checker()
    typed = coerce_table(TABLES["orders"], raw, check)
    found = {(p.table, p.column, p.what): p for p in check.problems}
    assert set(found) == {("orders", "order_ts", "timestamp does not parse"),
                          ("orders", "amount", "not a number"),
                          ("orders", "order_id", "ids must be text or whole numbers")}
    assert all(p.count == 1 for p in check.problems)
    assert "not a time" in found[("orders", "order_ts", "timestamp does not parse")].examples
    assert "lots" in found[("orders", "amount", "not a number")].examples
    assert "2.5" in found[("orders", "order_id", "ids must be text or whole numbers")].examples
    assert typed["amount"].tolist()[:2] == [1.5, 2.0] and np.isnan(typed["amount"][2])
    assert pd.isna(typed["order_ts"][1])


def test_text_read_as_a_categorical_stays_one_and_other_categoricals_become_text():
    raw = pd.DataFrame({"customer_id": pd.Categorical(["b", "a", "b"]),
                        "event_ts": pd.to_datetime(["2024-01-01"] * 3),
                        "event_type": pd.Categorical(["web", None, "app"]),
                        "value": [1.0, 2.0, 3.0]})
    raw.attrs[CODED] = ("customer_id", "event_type")  # as Partition.read marks what it coded
    check = _Checker()
    typed = coerce_table(TABLES["engagement"], raw, check)
    assert check.problems == []
    for col in ("customer_id", "event_type"):
        assert isinstance(typed[col].dtype, pd.CategoricalDtype), col
        assert typed[col].astype(object).where(typed[col].notna(), None).tolist() == \
            raw[col].astype(object).where(raw[col].notna(), None).tolist()
    numbers = coerce_table(TABLES["engagement"], raw.assign(
        customer_id=pd.Categorical([7, 8, 7])), check)
    assert numbers["customer_id"].tolist() == ["7", "8", "7"]
    # a categorical nobody coded on purpose (a user's, ordered or not) becomes plain text
    unmarked = raw.copy()
    unmarked.attrs = {}
    unmarked["customer_id"] = pd.Categorical(["b", "a", "b"], categories=["b", "a"],
                                             ordered=True)
    text = coerce_table(TABLES["engagement"], unmarked, check)
    assert not isinstance(text["customer_id"].dtype, pd.CategoricalDtype)
    assert text["customer_id"].tolist() == ["b", "a", "b"] and text["customer_id"].min() == "a"
    mixed = coerce_table(TABLES["engagement"], unmarked.assign(
        customer_id=pd.Categorical([1, "a", 1])), check)
    assert mixed["customer_id"].tolist() == ["1", "a", "1"] and check.problems == []

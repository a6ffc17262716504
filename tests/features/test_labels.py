"""Labels and population for both churn definitions, on hand-built customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.contract import validate
from features.crm import CrmData

T = pd.Timestamp("2024-04-01")


def _crm() -> CrmData:
    ts = pd.to_datetime
    customers = pd.DataFrame({
        "customer_id": ["P", "Q", "R", "S", "X", "T", "U", "V", "W"],
        "signup_date": ts(["2023-01-01"] * 3 + ["2024-05-01", "2023-01-01"] + ["2023-01-01"] * 4),
        "cancel_date": ts([None, None, None, None, None, "2024-05-10", None, "2024-03-01",
                           "2024-05-01"]),
        "has_contract": [False, False, False, False, False, True, True, True, False],
    })
    orders = pd.DataFrame({
        "customer_id": ["P", "P", "Q", "R", "X", "X", "T", "U", "U", "W", "P", "Q"],
        "order_ts": ts(["2024-03-15", "2024-05-01", "2024-03-15", "2023-12-01", "2024-03-10",
                        "2024-04-01", "2024-03-20", "2024-03-20", "2024-04-15", "2024-03-03",
                        "2024-12-31", "2024-11-20"]),
        "amount": [10.0] * 12,
    })
    return CrmData.from_tables(validate({"customers": customers, "orders": orders}))


def _labels(definition: str, cutoff=T, horizon=90) -> pd.Series:
    fs = build_feature_set(_crm(), [cutoff], FeatureConfig(),
                           LabelConfig(definition=definition, horizon_days=horizon))
    return fs.frame.set_index("customer_id")["label"]


def test_noncontractual_population_and_labels():
    labels = _labels("noncontractual")
    # R ordered more than 90 days before t: already gone. S signed up after t. V cancelled.
    assert set(labels.index) == {"P", "Q", "X", "T", "U", "W"}
    assert labels["P"] == 0, "P orders within the horizon"
    assert labels["Q"] == 1, "Q never orders again"
    assert labels["X"] == 1, "an order exactly at t counts neither as history nor as future"
    assert labels["U"] == 0


def test_contractual_population_and_labels():
    labels = _labels("contractual")
    # only contract customers not cancelled by t; W has no contract, V cancelled before t
    assert set(labels.index) == {"T", "U"}
    assert labels["T"] == 1, "T cancels on 2024-05-10, inside (t, t + 90 days]"
    assert labels["U"] == 0


def test_cancel_after_the_horizon_is_not_churn():
    labels = _labels("contractual", horizon=30)
    assert labels["T"] == 0, "2024-05-10 is 39 days after t: outside a 30-day horizon"


def test_labels_are_unknown_when_the_data_ends_before_the_horizon():
    labels = _labels("noncontractual", cutoff=pd.Timestamp("2024-12-01"), horizon=90)
    assert len(labels) > 0 and labels.isna().all(), labels


def test_stacked_cutoffs_keep_each_cutoff_apart():
    later = pd.Timestamp("2024-04-10")
    fs = build_feature_set(_crm(), [later, T], FeatureConfig(), LabelConfig())
    assert list(fs.frame["cutoff"].drop_duplicates()) == [T, later]
    assert not fs.frame.duplicated(["customer_id", "cutoff"]).any()


@pytest.mark.parametrize("bad", [{"horizon_days": 0}, {"definition": "sometimes"}])
def test_bad_label_settings_are_refused(bad):
    with pytest.raises(ValueError):
        LabelConfig(**bad)


def test_no_cutoff_is_an_error():
    with pytest.raises(ValueError, match="cutoff"):
        build_feature_set(_crm(), [], FeatureConfig(), LabelConfig())


def test_population_is_what_the_features_cover():
    labels = _labels("noncontractual")
    assert np.isfinite(labels).all()

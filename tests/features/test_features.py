"""Feature values on hand-built customers, checked by hand, and the same numbers on any partition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import (
    PreparedCrm,
    build_feature_set,
    compute_features,
    read_feature_set,
    resolve_config,
    write_feature_set,
)
from features.config import FeatureConfig, LabelConfig
from features.contract import validate
from features.crm import CrmData

CUTOFF = pd.Timestamp("2024-04-01")


@pytest.fixture
def at_cutoff(tiny):
    crm = CrmData.from_tables(validate(tiny))
    sink = compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig())
    frame = pd.DataFrame(sink.values, index=crm.customers["customer_id"])
    return frame, sink.specs


EXPECTED = [
    # (customer, feature, value) worked out by hand from tests/conftest.py::tiny_tables
    ("A", "recency_days", 30.0),            # last order 2024-03-02
    ("A", "orders_30d", 1.0),                # 2024-03-02 is exactly 30 days back: inside
    ("A", "orders_90d", 2.0),                # 2024-01-01 is 91 days back: outside
    ("A", "spend_90d", 50.0),
    ("A", "orders_lifetime", 3.0),
    ("A", "interpurchase_days", 30.5),       # (91 - 30) / 2
    ("A", "tenure_days", 456.0),
    ("A", "open_tickets", 1.0),              # opened 03-25, closed after the cutoff
    ("A", "complaints_90d", 2.0),
    ("A", "resolution_hours_mean_365d", 96.0),  # only the closed ticket counts
    ("A", "tickets_escalated_365d", 1.0),
    ("A", "escalated_rate_365d", 1.0),
    ("A", "nps_last", 4.0),
    ("A", "nps_change", -5.0),
    ("A", "nps_detractor", 1.0),
    ("A", "nps_promoter", 0.0),
    ("A", "email_open_rate_90d", 1.0),
    ("A", "pages_per_session_90d", 4.0),
    ("A", "offers_received_365d", 1.0),
    ("A", "offers_accepted_365d", 1.0),
    ("A", "days_since_last_offer", 41.0),
    ("B", "resolution_hours_mean_365d", 6.0),
    ("B", "first_contact_resolution_rate_365d", 1.0),
    ("B", "surveys_unanswered_365d", 1.0),
    ("B", "survey_response_rate_365d", 0.0),
    ("B", "offers_received_365d", 0.0),      # a hold-out row was never sent
    ("B", "days_since_last_offer", np.nan),
    ("B", "tickets_chat_share_365d", 1.0),
    ("C", "interpurchase_days", np.nan),     # one order: no gap yet
    ("C", "nps_last", np.nan),
    ("C", "tickets_90d", 0.0),
    ("C", "has_contract", 1.0),
]


@pytest.mark.parametrize("customer,feature,value", EXPECTED,
                         ids=[f"{c}-{f}" for c, f, _ in EXPECTED])
def test_feature_value_by_hand(at_cutoff, customer, feature, value):
    frame, _ = at_cutoff
    got = frame.loc[customer, feature]
    if np.isnan(value):
        assert pd.isna(got), f"{customer}.{feature}: expected missing, got {got}"
    else:
        assert got == pytest.approx(value), f"{customer}.{feature}: expected {value}, got {got}"


def test_every_feature_has_metadata_a_crm_user_can_read(at_cutoff):
    frame, specs = at_cutoff
    assert [s.name for s in specs] == list(frame.columns)
    for s in specs:
        assert s.family in {"rfm", "btyd", "support", "voice", "engagement", "activity",
                            "offers", "static"}, s
        assert s.description and "{value}" in s.sentence, s
    by_name = {s.name: s for s in specs}
    assert by_name["complaints_90d"].say(3.0) == "3 complaints in the last 90 days"
    assert by_name["recency_days"].say(120.0) == "no order for 120 days"
    assert by_name["plan"].say("basic") == "plan is basic"


def test_the_families_of_the_design_are_all_there(at_cutoff):
    _, specs = at_cutoff
    families = {s.family for s in specs}
    assert families == {"rfm", "btyd", "support", "voice", "engagement", "activity", "offers",
                        "static"}
    assert len(specs) >= 60, f"only {len(specs)} features"


def test_windows_are_configurable(tiny):
    crm = CrmData.from_tables(validate(tiny))
    sink = compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig(windows=(14, 60, 180)))
    assert "orders_14d" in sink.values and "orders_30d" not in sink.values
    assert sink.values["orders_60d"][0] == 2.0  # A: 03-02 and 02-01 (60 days back: inside)


def test_the_rfm_names_that_other_packages_look_up_are_the_ones_built(tiny):
    """Customer value (``scoring.offers.value``) reads two RFM features by the names
    ``features.families.rfm`` gives them: those names are the built columns, for any window."""
    from features.families.rfm import avg_order_value_feature, orders_feature

    crm = CrmData.from_tables(validate(tiny))
    sink = compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig(windows=(14, 60, 180)))
    assert orders_feature(60) == "orders_60d" and sink.values[orders_feature(60)][0] == 2.0
    assert sink.values[avg_order_value_feature(180)][0] == 20.0  # A: 10, 20, 30 in 180 days
    specs = {s.name: s for s in sink.specs}
    assert specs[avg_order_value_feature(180)].family == "rfm"


def test_a_customer_attribute_named_as_a_feature_is_bad_input(tiny):
    """Static attributes become features under their own names: one that a family already
    built is the data's problem, named as such (not a duplicate-definition bug)."""
    from features.errors import BadInput

    tiny["customers"]["recency_days"] = 5.0
    crm = CrmData.from_tables(validate(tiny))
    with pytest.raises(BadInput, match=r"customers\.recency_days: a customer attribute with the "
                                       "name of a built feature"):
        compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig())


@pytest.mark.parametrize("column", ["label", "cutoff"])
def test_a_customer_attribute_named_as_a_feature_set_column_is_bad_input(tiny, column):
    """`label` used to be overwritten by the target and trained on as a feature (the model learnt
    the answer); `cutoff` stopped the build as an internal error."""
    from features.errors import BadInput

    tiny["customers"][column] = 7.0
    crm = CrmData.from_tables(validate(tiny))
    with pytest.raises(BadInput, match=rf"customers\.{column}: a customer attribute with the name "
                                       "of a column the feature set adds"):
        build_feature_set(crm, [CUTOFF], FeatureConfig(), LabelConfig())


def test_missing_optional_tables_mean_absent_features(tiny):
    crm = CrmData.from_tables(validate({k: tiny[k] for k in ("customers", "orders")}))
    sink = compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig())
    families = {s.family for s in sink.specs}
    assert families == {"rfm", "btyd", "static"}, families


def test_features_on_a_partition_equal_features_on_the_whole_base(sample_crm):
    """The contract a distributed engine relies on: a customer's numbers do not depend on who else
    is in the partition."""
    cutoffs = [pd.Timestamp("2025-03-01"), pd.Timestamp("2025-06-01")]
    # what is found in the data (the event vocabulary) is fixed once, before partitioning
    config = resolve_config(sample_crm, cutoffs, FeatureConfig())
    assert config.event_types, "the sample's event types were not found"
    whole = build_feature_set(sample_crm, cutoffs, config, LabelConfig()).frame
    ids = sample_crm.customers["customer_id"]
    rng = np.random.default_rng(0)
    parts = []
    for part in np.array_split(rng.permutation(ids.to_numpy()), 3):
        parts.append(build_feature_set(sample_crm.subset(part), cutoffs, config,
                                       LabelConfig()).frame)
    stitched = pd.concat(parts).sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    whole = whole.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    assert len(whole) > 500
    pd.testing.assert_frame_equal(whole, stitched, check_exact=True)


def test_feature_set_round_trips_with_its_metadata(tmp_path, sample_crm):
    fs = build_feature_set(sample_crm, [pd.Timestamp("2025-06-01")], FeatureConfig(),
                           LabelConfig(horizon_days=60))
    path = write_feature_set(fs, tmp_path / "fs.parquet")
    back = read_feature_set(path)
    assert back.specs == fs.specs
    assert back.label_config == LabelConfig(horizon_days=60)
    assert back.config == fs.config and back.config.event_types  # the vocabulary travels too
    pd.testing.assert_frame_equal(back.frame, fs.frame, check_dtype=False)

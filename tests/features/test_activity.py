"""Activity features for any event vocabulary: types nobody here named get counted, described and
explained; rare types are grouped; a fixed vocabulary keeps the columns whatever the data holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import PreparedCrm, build_feature_set, compute_features, resolve_config
from features.config import FeatureConfig, LabelConfig
from features.contract import validate
from features.crm import CrmData

CUTOFF = pd.Timestamp("2024-04-01")


def _crm(events: list[tuple[str, str, str, float | None]]) -> CrmData:
    """Two customers with an order each and the given (customer, time, type, value) events."""
    customers = pd.DataFrame({"customer_id": ["A", "B"],
                              "signup_date": pd.to_datetime(["2023-01-01", "2023-01-01"])})
    orders = pd.DataFrame({"customer_id": ["A", "B"],
                           "order_ts": pd.to_datetime(["2024-01-10", "2024-02-10"]),
                           "amount": [10.0, 20.0]})
    engagement = pd.DataFrame(events, columns=["customer_id", "event_ts", "event_type", "value"])
    engagement["event_ts"] = pd.to_datetime(engagement["event_ts"], format="ISO8601")
    return CrmData.from_tables(validate({"customers": customers, "orders": orders,
                                         "engagement": engagement}))


EVENTS = [
    ("A", "2024-03-30 10:00", "Post Created!", None),
    ("A", "2024-03-30 18:00", "Post Created!", None),
    ("A", "2024-03-20", "like", 1.0),
    ("A", "2024-01-05", "like", 3.0),
    ("A", "2024-04-02", "like", 100.0),            # after the cutoff: never counted
    ("B", "2024-03-25", "ad_view", 5.0),
    ("B", "2023-12-01", "Post Created!", None),
    ("B", "2023-12-01", "rare_thing", None),
]


def _features(events, config=FeatureConfig()) -> tuple[pd.DataFrame, dict]:
    sink = compute_features(PreparedCrm(_crm(events)), CUTOFF, config)
    frame = pd.DataFrame(sink.values, index=["A", "B"])
    return frame, {s.name: s for s in sink.specs}


def test_a_vocabulary_never_seen_before_gets_named_described_features():
    frame, specs = _features(EVENTS)
    for name in ("post_created_events_30d", "like_events_90d", "ad_view_events_365d",
                 "days_since_like", "post_created_share_365d", "like_value_mean_30d",
                 "ad_view_value_365d", "active_days_any_30d", "event_types_used_365d"):
        assert name in frame.columns, f"{name} missing; have {sorted(frame.columns)[:20]}..."
        spec = specs[name]
        assert spec.family == "activity" and spec.description and "{value}" in spec.sentence
    assert frame.loc["A", "post_created_events_30d"] == 2
    assert frame.loc["A", "like_events_30d"] == 1 and frame.loc["A", "like_events_90d"] == 2
    assert frame.loc["A", "like_value_mean_90d"] == pytest.approx(2.0)  # (1 + 3) / 2, not the 100
    assert frame.loc["A", "days_since_like"] == pytest.approx(12.0)      # 03-20 -> 04-01
    assert frame.loc["B", "days_since_like"] != frame.loc["B", "days_since_like"]  # NaN: never
    assert frame.loc["A", "active_days_any_30d"] == 2  # 03-20 and 03-30 (two events that day)
    assert frame.loc["A", "event_types_used_365d"] == 2
    assert frame.loc["A", "post_created_share_365d"] == pytest.approx(2 / 4)
    assert specs["like_events_90d"].say(2.0) == "2 like events in the last 90 days"


def test_rare_types_are_grouped_and_the_grouping_is_a_setting():
    config = FeatureConfig(min_event_share=0.15)  # ad_view, rare_thing: 1 of 7 events each
    frame, _ = _features(EVENTS, config)
    assert not any(c.startswith(("rare_thing", "ad_view")) for c in frame.columns)
    assert frame.loc["B", "other_types_events_365d"] == 2
    assert frame.loc["A", "other_types_events_365d"] == 0
    top2, _ = _features(EVENTS, FeatureConfig(max_event_types=2))
    kept = {c.split("_events_")[0] for c in top2.columns if c.endswith("_events_365d")}
    assert kept == {"post_created", "like", "other_types"}, kept


def test_a_fixed_vocabulary_keeps_every_column_when_the_data_lacks_a_type():
    config = FeatureConfig(event_types=("like", "login"), valued_event_types=("like",))
    frame, _ = _features(EVENTS, config)
    assert (frame["login_events_365d"] == 0).all()
    assert frame.loc["A", "other_types_events_365d"] == 2  # the posts fall in "other types"
    assert frame.loc["B", "other_types_events_365d"] == 3


def test_the_vocabulary_found_at_build_time_is_recorded_and_reused():
    crm = _crm(EVENTS)
    cutoffs = [pd.Timestamp("2024-02-01"), CUTOFF]
    config = resolve_config(crm, cutoffs, FeatureConfig())
    assert set(config.event_types) == {"Post Created!", "like", "ad_view", "rare_thing"}
    assert set(config.valued_event_types) == {"like", "ad_view"}
    fs = build_feature_set(crm, cutoffs, FeatureConfig(), LabelConfig(horizon_days=30))
    assert (fs.config.event_types, fs.config.valued_event_types) == (
        config.event_types, config.valued_event_types)
    # the early cutoff has no ad view yet, and still has its columns (zeros, not absent)
    early = fs.frame[fs.frame["cutoff"] == cutoffs[0]]
    assert "ad_view_events_30d" in early.columns
    assert np.nan_to_num(early["ad_view_events_365d"].to_numpy()).sum() == 0

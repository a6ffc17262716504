"""The engagement family's tallies per event type: one pass per window for every type gives
exactly the numbers of masking each type (the features written before it did so)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.events import SortedEvents
from features.families import FeatureSink
from features.families.engagement import ENGAGEMENT_TYPES, _ByType, add_engagement

CUTOFF = pd.Timestamp("2025-01-01")


def _events(n_customers: int = 40, n_events: int = 3000, seed: int = 0) -> SortedEvents:
    rng = np.random.default_rng(seed)
    types = [*ENGAGEMENT_TYPES, "push_open", None]  # a type the family does not name, a missing one
    kind = pd.Series(rng.choice(np.array(types, dtype=object), n_events)).astype("category")
    value = rng.normal(3.0, 10.0, n_events)
    value[rng.random(n_events) < 0.3] = np.nan
    value[rng.random(n_events) < 0.02] = np.inf  # kept as they are: only NaN is missing
    value[rng.random(n_events) < 0.02] = -0.0
    frame = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, n_customers, n_events)],
        "event_ts": CUTOFF - pd.to_timedelta(rng.uniform(-20, 800, n_events), unit="D"),
        "event_type": kind, "value": value})
    index = pd.Index([f"C{i:03d}" for i in range(n_customers + 2)])  # two with no events
    return SortedEvents.from_frame(frame, index, "event_ts", ["event_type", "value"])


@pytest.mark.parametrize(("window", "start"), [(30, 0.0), (90, 90.0), (365, 0.0), (None, 0.0)])
def test_tallies_per_type_equal_masking_each_type_bit_for_bit(window, start):
    view = _events().before(CUTOFF)
    by = _ByType(view, ENGAGEMENT_TYPES)
    value = view.col("value")
    for t in ENGAGEMENT_TYPES:
        mask = view.col("event_type") == t
        np.testing.assert_array_equal(by.count(window, t, start=start),
                                      view.count(window, mask=mask, start=start), err_msg=t)
        if start == 0:
            np.testing.assert_array_equal(by.total(window, t), view.total(value, window, mask=mask),
                                          err_msg=t)
            np.testing.assert_array_equal(by.mean(window, t), view.mean(value, window, mask=mask),
                                          err_msg=t)
    both = view.col("event_type").isin(["web_session", "app_login"])
    np.testing.assert_array_equal(by.count(window, "web_session", "app_login", start=start),
                                  view.count(window, mask=both, start=start))
    np.testing.assert_array_equal(by.of("review", "referral"),
                                  view.col("event_type").isin(["review", "referral"]))


def test_the_family_without_values_or_with_numeric_types_counts_nothing_it_cannot_see():
    view = _events().before(CUTOFF)
    no_value = type(view)(view.codes, view.age, view.n, {"event_type": view.col("event_type")},
                          view.cutoff_ns)
    sink = FeatureSink()
    add_engagement(sink, no_value, FeatureConfig())
    assert np.isnan(sink.values["review_rating_mean_365d"]).all()
    assert (sink.values["loyalty_points_balance"] == 0).all()
    assert sink.values["web_sessions_30d"].sum() > 0

    numeric = type(view)(view.codes, view.age, view.n,
                         {"event_type": np.ones(len(view)), "value": view.col("value")},
                         view.cutoff_ns)
    sink = FeatureSink()
    add_engagement(sink, numeric, FeatureConfig())
    assert (sink.values["web_sessions_30d"] == 0).all()
    assert np.isnan(sink.values["days_since_last_activity"]).all()

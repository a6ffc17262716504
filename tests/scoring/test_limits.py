"""The values a model accepts (scoring.limits): unit rules, the recorded training range, old
models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from features.spec import CATEGORY, FeatureSpec
from scoring.limits import ALL_EMPTY, Limits, with_limits


def _spec(name: str, unit: str, kind: str = "number", **kw) -> FeatureSpec:
    return FeatureSpec(name, "f", None, name, unit, "{value}", kind, **kw)


@pytest.mark.parametrize("spec,allowed", [
    (_spec("orders_90d", "orders"), (0.0, None)),
    (_spec("recency_days", "days"), (0.0, None)),
    (_spec("email_open_rate_90d", "share"), (0.0, 1.0)),
    (_spec("has_contract", "flag"), (0.0, 1.0)),
    (_spec("orders_trend_90d", "orders"), (None, None)),
    (_spec("nps_change", "points"), (None, None)),
    (_spec("loyalty_points_balance", "points"), (None, None)),
    (_spec("plan", "", CATEGORY), (None, None)),
], ids=lambda v: v.name if isinstance(v, FeatureSpec) else None)
def test_the_unit_says_what_a_value_may_be(spec, allowed):
    assert spec.allowed_range() == allowed


def test_recorded_limits_widen_the_training_range_but_keep_the_unit_rule():
    specs = [_spec("orders_90d", "orders"), _spec("share", "share"),
             _spec("hours", "hours"), _spec("orders_trend_90d", "orders"),
             _spec("never_seen", "orders")]
    ranges = {"orders_90d": (0.0, 12.0), "share": (0.0, 1.0), "hours": (-3.0, 50.0),
              "orders_trend_90d": (-5.0, 7.0)}
    got = {s.name: (s.low, s.high) for s in with_limits(specs, ranges, margin=100)}
    assert got["orders_90d"] == (0.0, 12.0 + 100 * 12.0)
    assert got["share"] == (0.0, 1.0)
    assert got["hours"][0] == -3.0, "never narrower than what training saw"
    assert got["orders_trend_90d"] == (-5.0 - 100 * 12.0, 7.0 + 100 * 12.0)
    assert got["never_seen"] == (None, None)


def test_the_check_names_the_first_bad_value_and_a_row_with_nothing():
    specs = [_spec("orders_90d", "orders", low=0.0, high=1200.0), _spec("share", "share"),
             _spec("has_contract", "flag"), _spec("plan", "", CATEGORY)]
    limits = Limits.of([s.name for s in specs], [s.kind for s in specs], specs)
    x = np.array([[3, 0.5, 1, 0], [-1, 0.5, 1, 0], [3, 1.5, 1, 0], [1e12, 2, 1, 0],
                  [np.nan] * 4, [np.nan, np.nan, np.nan, 1]])
    assert list(limits.reasons(x)) == ["", "orders_90d below the allowed minimum 0",
                                       "share above the allowed maximum 1",
                                       "orders_90d above the allowed maximum 1200", ALL_EMPTY, ""]
    assert limits.item_problems({"orders_90d": 1e12}, x[3]) == [
        "orders_90d = 1e+12 is above the allowed maximum 1200"]
    assert limits.item_problems({"orders_90d": True}, x[0]) == [
        "feature 'orders_90d' must be a number, got True"]
    assert limits.item_problems({"has_contract": True}, x[0]) == []
    # one vector's check (the API's) says what the block's check says, with the value
    detailed = limits.reasons(x, detail=True)
    assert [limits.row_reason(row) for row in x] == list(detailed)
    assert detailed[1] == "orders_90d = -1 is below the allowed minimum 0"


def test_a_model_saved_before_limits_loads_with_the_unit_rules_only(served_workdir, tmp_path):
    from scoring.model_store import load_scorer, use_tracking
    from scoring.scorer import ChurnScorer

    use_tracking()
    new = load_scorer("models:/churn@champion").scorer
    folder = new.save(tmp_path / "new")
    spec = json.loads((folder / "scorer.json").read_text())
    assert spec["meta"]["limits"]["recorded"] and spec["meta"]["limits"]["ranges"]
    assert not any("low" in s or "high" in s for s in spec["specs"]), "older code reads specs"
    del spec["meta"]["limits"]  # as a model saved before this change
    (tmp_path / "old").mkdir()
    shutil.copy(folder / "booster.txt", tmp_path / "old" / "booster.txt")
    (tmp_path / "old" / "scorer.json").write_text(json.dumps(spec))
    old = ChurnScorer.load(tmp_path / "old")
    assert all(s.low is None and s.high is None for s in old.specs)
    x = np.full((3, len(old.features)), np.nan)
    j = old.features.index("tenure_days")
    x[:, j] = [1e12, -1.0, 400.0]
    assert list(old.limits.reasons(x)) == ["", "tenure_days below the allowed minimum 0", ""]
    assert new.limits.reasons(x)[0].startswith("tenure_days above the allowed maximum")
    # saved again (as the Spark engine ships a model): still no limits invented for it
    again = ChurnScorer.load(old.save(tmp_path / "again"))
    assert all(s.low is None and s.high is None for s in again.specs)

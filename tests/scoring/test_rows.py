"""One customer's feature dict read into the model's vector (scoring.rows, the API's path): the
same vector and the same problems, in the same order, as the per-feature definition
(``ChurnScorer.row`` then ``Limits.item_problems``), whatever the values sent."""

from __future__ import annotations

import random

import numpy as np
import pytest

from features.spec import CATEGORY, NUMBER, FeatureSpec
from scoring.rows import RowReader
from scoring.scorer import Calibrator, ChurnScorer


def _spec(name: str, unit: str, kind: str = NUMBER, **kw) -> FeatureSpec:
    return FeatureSpec(name, "f", None, name, unit, "{value}", kind, **kw)


SPECS = [_spec("orders_90d", "orders", low=0.0, high=1200.0), _spec("plan", "", CATEGORY),
         _spec("email_open_rate_90d", "share"), _spec("has_contract", "flag"),
         _spec("orders_trend_90d", "orders"), _spec("segment", "", CATEGORY),
         _spec("recency_days", "days", low=0.0, high=5000.0)]


@pytest.fixture(scope="module")
def scorer() -> ChurnScorer:
    # reading rows never touches the booster: none is needed
    return ChurnScorer([s.name for s in SPECS], [s.kind for s in SPECS],
                       {"plan": ["basic", "premium"], "segment": ["2", "1", "3.0"]}, None,
                       Calibrator("identity"), SPECS)


def _definition(scorer: ChurnScorer, features: dict, ignore_unknown: bool):
    x, problems = scorer.row(features, ignore_unknown=ignore_unknown)
    return x, problems or scorer.limits.item_problems(features, x)


PLAIN = {"orders_90d": 3.0, "plan": "premium", "email_open_rate_90d": 0.25, "has_contract": 1.0,
         "orders_trend_90d": -2.0, "segment": "1", "recency_days": 40.0}
CASES = {
    "plain numbers": PLAIN,
    "whole numbers as ints": {**PLAIN, "orders_90d": 3, "recency_days": 0},
    "missing values": {**PLAIN, "orders_90d": None, "email_open_rate_90d": None},
    "absent features": {"orders_90d": 2.0, "recency_days": 9.0},
    "every feature empty": {k: None for k in PLAIN},
    "nothing sent": {},
    "below the minimum": {**PLAIN, "orders_90d": -1.0},
    "above the maximum, second bad value ignored": {**PLAIN, "email_open_rate_90d": 1.5,
                                                    "recency_days": 1e9},
    "a count as a boolean": {**PLAIN, "orders_90d": True},
    "a flag as a boolean": {**PLAIN, "has_contract": False},
    "a number as text": {**PLAIN, "recency_days": "40"},
    "not a number": {**PLAIN, "orders_trend_90d": float("nan")},
    "infinite": {**PLAIN, "orders_90d": float("inf"), "recency_days": -float("inf")},
    "a numpy number": {**PLAIN, "orders_90d": np.float64(5.0)},
    "unknown names": {**PLAIN, "zz": 1.0, "aa": None},
    "unknown names and a bad value": {**PLAIN, "zz": 1.0, "orders_90d": -5.0},
    "categories unseen, numeric and missing": {**PLAIN, "plan": "gold", "segment": 3.0},
    "a category as a number": {**PLAIN, "segment": 2},
    "a category as a boolean": {**PLAIN, "plan": True},
    "an integer past float's range": {**PLAIN, "orders_90d": 10**400},
}


def test_an_integer_past_floats_range_is_a_problem_not_an_exception(scorer):
    """JSON allows any integer; one too large for a float names its feature (a client error,
    not a 500)."""
    x, problems = RowReader(scorer).read({**PLAIN, "recency_days": -(10**400)})
    assert problems and "feature 'recency_days' is not a finite number" in problems[0], problems
    assert np.isnan(x[scorer.features.index("recency_days")])


@pytest.mark.parametrize("ignore_unknown", [False, True], ids=["client", "store"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_row_reads_as_the_per_feature_definition(scorer, case, ignore_unknown):
    features = CASES[case]
    want_x, want_problems = _definition(scorer, features, ignore_unknown)
    x, problems = RowReader(scorer).read(features, ignore_unknown=ignore_unknown)
    assert np.array_equal(x, want_x, equal_nan=True), (case, x, want_x)
    assert problems == want_problems, case


def test_random_rows_read_as_the_definition(scorer):
    rng = random.Random(5)
    pool = [None, 0, 1, -1, 2.5, -0.0, 1e-320, 1e300, -1e300, 0.7, 40.0, 5000.0, 5000.5, True,
            False, "basic", "premium", "1", "3.0", "x", float("nan"), float("inf")]
    names = [*PLAIN, "unknown_a", "unknown_b"]
    reader = RowReader(scorer)
    for _ in range(500):
        features = {n: rng.choice(pool) for n in rng.sample(names, rng.randint(0, len(names)))}
        if rng.random() < 0.5:  # most customers: plain numbers and nulls only
            features = {n: v for n, v in features.items()
                        if v is None or type(v) in (int, float) and np.isfinite(v)}
        for ignore in (False, True):
            want_x, want_problems = _definition(scorer, features, ignore)
            x, problems = reader.read(features, ignore_unknown=ignore)
            assert np.array_equal(x, want_x, equal_nan=True), features
            assert problems == want_problems, features

"""Values the model's specification does not allow get a per-item error naming the field and the
value (issue 17); the good items of the same request are scored; nothing is ever a 500."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import API_KEYS

AUTH = {"Authorization": f"Bearer {API_KEYS[0]}"}


@pytest.fixture(scope="module")
def client(served):
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from starlette.testclient import TestClient

    from serving.service import ChurnService

    env = {**{k: v for k, v in served.items() if k.isupper()}, "CHURN_RATE_LIMIT": "0"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    with TestClient(ChurnService.to_asgi()) as c:
        yield c
    mp.undo()
    import gc

    gc.unfreeze()


@pytest.fixture(scope="module")
def good_features(served):
    frame = served["features"].frame
    row = frame.iloc[0][served["features"].feature_names]
    return {k: (None if isinstance(v, float) and np.isnan(v) else
                v if isinstance(v, str) else float(v)) for k, v in row.items()}


BAD = [  # (feature, value, words the item's error must contain)
    ("orders_lifetime", -1, "orders_lifetime = -1 is below the allowed minimum 0"),
    ("email_open_rate_90d", 1.5, "email_open_rate_90d = 1.5 is above the allowed maximum 1"),
    ("tenure_days", -1e9, "tenure_days = -1e+09 is below the allowed minimum 0"),
    ("spend_lifetime", 1e12, "spend_lifetime = 1e+12 is above the allowed maximum"),
    ("orders_90d", True, "feature 'orders_90d' must be a number, got True"),
]


def test_bad_values_get_a_per_item_error_and_the_good_items_their_scores(client, good_features,
                                                                         served):
    known = served["features"].frame["customer_id"].iloc[1]
    customers = [{"customer_id": "good", "features": good_features}, {"customer_id": known}]
    for i, (name, value, _) in enumerate(BAD):
        customers.append({"customer_id": f"bad{i}", "features": {**good_features, name: value}})
    customers.append({"customer_id": "empty", "features": {k: None for k in good_features}})
    r = client.post("/score", json={"customers": customers}, headers=AUTH)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["customer_id"] for x in results] == [c["customer_id"] for c in customers]
    for item in results[:2]:
        assert item["error"] is None and 0 <= item["churn_probability"] <= 1, item
    for item, (_, _, words) in zip(results[2:-1], BAD, strict=True):
        assert item["churn_probability"] is None and words in (item["error"] or ""), item
    assert results[-1]["error"] == "every feature is empty"
    assert results[-1]["churn_probability"] is None


def test_a_flag_may_still_come_as_a_boolean(client, good_features, served):
    from features.spec import FeatureSpec

    flags = [s.name for s in served["features"].specs
             if isinstance(s, FeatureSpec) and s.unit == "flag"]
    if not flags:
        pytest.skip("the sample has no flag feature")
    r = client.post("/score", json={"customers": [{"customer_id": "f", "features": {
        **good_features, flags[0]: True}}]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["results"][0]["error"] is None, r.text


@pytest.mark.parametrize("features", [{"recency_days": -1e300}, {"recency_days": 1e308},
                                      {"orders_90d": False}, {}, {"recency_days": None}],
                         ids=["-1e300", "1e308", "false", "no features", "only null"])
def test_a_single_bad_item_is_never_a_server_error(client, features):
    r = client.post("/score", json={"customers": [{"customer_id": "x", "features": features}]},
                    headers=AUTH)
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert r.json()["results"][0]["error"], r.text

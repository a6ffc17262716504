"""The real server: `churn serve` on a free loopback port, as the CRM meets it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import API_KEYS
from tests.serving.conftest import churn_serve, promote_a_copy

pytestmark = pytest.mark.slow
KEY = API_KEYS[0]


def _post(url: str, body: dict, key: str | None = KEY, timeout: float = 10) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/score", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def server(served):
    # the swap test below sends as fast as it can: no per-key limit here (test_service_faults)
    env = {**{k: v for k, v in served.items() if k.isupper()}, "CHURN_RATE_LIMIT": "0"}
    # two workers: each loads the model and watches the registry on its own
    server = churn_serve(Path(served["root"]), env, workers=2, name="server")
    server.start()
    yield server.url
    server.stop()


def test_scores_by_id_and_by_features_with_per_item_errors(server, served):
    ids = served["features"].frame["customer_id"].head(3).tolist()
    status, body = _post(server, {"customers": [{"customer_id": ids[0]},
                                                {"customer_id": "nobody"},
                                                {"customer_id": "f", "features": {
                                                    "recency_days": 250.0, "plan": "basic"}}]})
    assert status == 200, body
    a, b, c = body["results"]
    assert a["churn_probability"] is not None and a["model_version"] == served["version"]
    assert "unknown customer_id" in b["error"]
    assert c["error"] is None and c["features_as_of"] is None


def test_no_key_is_401_and_health_is_open(server):
    status, body = _post(server, {"customers": [{"customer_id": "x"}]}, key=None)
    assert status == 401
    with urllib.request.urlopen(server + "/readyz") as r:
        assert r.status == 200


def test_metrics_show_requests_scores_offers_and_the_model_version(server, served):
    ids = served["features"].frame["customer_id"].head(20).tolist()
    _post(server, {"customers": [{"customer_id": i} for i in ids]})
    req = urllib.request.Request(server + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req) as r:
        text = r.read().decode()
    for name in ("churn_probability_bucket", "churn_items_total", "churn_offers_total",
                 "churn_model_version", "bentoml_service_request_duration_seconds"):
        assert name in text, f"{name} missing from /metrics"
    assert f'model_version="{served["version"]}"' in text


def test_schemathesis_finds_no_server_error(server):
    st = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(st), "run", server + "/docs.json", "-H", f"Authorization: Bearer {KEY}",
         "--checks", "not_a_server_error", "--max-time", "60", "--seed", "1",
         "--max-examples", "150"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "generated" in result.stdout


def test_a_new_champion_is_picked_up_without_a_failed_request(server, served):
    """Requests run while a new version is registered and made the champion; none may fail.
    (A copy of the champion's model registered again: a new version to load, without a second
    training of the sample.)"""
    ids = served["features"].frame["customer_id"].head(5).tolist()
    statuses, versions, stamps, stop = [], [], [], threading.Event()

    def load():
        while not stop.is_set():
            status, body = _post(server, {"customers": [{"customer_id": i} for i in ids]})
            statuses.append(status)
            if status == 200:
                versions.append(body["results"][0]["model_version"])
                stamps.append(time.monotonic())

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)  # some answers from the old version first
        new_version = promote_a_copy(served["MLFLOW_TRACKING_URI"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not versions or versions[-1] != new_version):
            time.sleep(0.5)
        time.sleep(4.0)  # both workers' watchers (1 s polls here) have had their turn
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert len(statuses) > 20, "the load generator barely ran"
    assert set(statuses) == {200}, f"failed requests during the swap: {set(statuses)}"
    assert versions[0] == served["version"] and versions[-1] == new_version
    # the workers converge: old answers stop within a bounded time of the first new one
    first_new = versions.index(new_version)
    last_old = max(i for i, v in enumerate(versions) if v == served["version"])
    assert stamps[last_old] - stamps[first_new] < 10, "a worker kept the old version too long"
    assert all(v == new_version for v in versions[last_old + 1:])
    assert versions[-20:] == [new_version] * 20

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
from tests.serving.conftest import churn_serve, http, promote_a_copy, wait_until

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
    server.bring_up = server.start()  # seconds: what a worker's loading may take under load
    yield server
    server.stop()


def test_scores_by_id_and_by_features_with_per_item_errors(server, served):
    ids = served["features"].frame["customer_id"].head(3).tolist()
    status, body = _post(server.url, {"customers": [{"customer_id": ids[0]},
                                                {"customer_id": "nobody"},
                                                {"customer_id": "f", "features": {
                                                    "recency_days": 250.0, "plan": "basic"}}]})
    assert status == 200, body
    a, b, c = body["results"]
    assert a["churn_probability"] is not None and a["model_version"] == served["version"]
    assert "unknown customer_id" in b["error"]
    assert c["error"] is None and c["features_as_of"] is None


def test_no_key_is_401_and_health_is_open(server):
    status, body = _post(server.url, {"customers": [{"customer_id": "x"}]}, key=None)
    assert status == 401
    with urllib.request.urlopen(server.url + "/readyz") as r:
        assert r.status == 200


def test_metrics_show_requests_scores_offers_and_the_model_version(server, served):
    ids = served["features"].frame["customer_id"].head(20).tolist()
    _post(server.url, {"customers": [{"customer_id": i} for i in ids]})
    req = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req) as r:
        text = r.read().decode()
    for name in ("churn_probability_bucket", "churn_items_total", "churn_offers_total",
                 "churn_model_version", "bentoml_service_request_duration_seconds"):
        assert name in text, f"{name} missing from /metrics"
    assert f'model_version="{served["version"]}"' in text


def test_schemathesis_finds_no_server_error(server):
    st = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(st), "run", server.url + "/docs.json", "-H", f"Authorization: Bearer {KEY}",
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
    body = {"customers": [{"customer_id": i} for i in ids]}
    poll = float(served["CHURN_POLL_SECONDS"])
    # each answer as one item (three threads append): when, the version, and the worker that
    # answered (the first 8 characters of a request id are its process's own: serving/middleware)
    statuses, answers, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, answer, headers = http(server.url, "/score", body, key=KEY, timeout=30)
            except OSError as e:  # refused, reset or timed out: a failed request as well
                statuses.append(f"{type(e).__name__}: {e}")
                continue
            statuses.append(status)
            if status == 200:
                answers.append((time.monotonic(), answer["results"][0]["model_version"],
                                headers.get("x-request-id", "")[:8]))

    def converged():
        """Both workers have answered with the new version, and the last 20 answers are new."""
        done = list(answers)
        return (len({w for _, v, w in done if v == new_version}) >= 2 and len(done) >= 20
                and {v for _, v, _ in done[-20:]} == {new_version})

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)  # some answers from the old version first
        new_version = promote_a_copy(served["MLFLOW_TRACKING_URI"])
        wait_until(converged, timeout=120, what="both workers answering with the new version")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    stamps, versions, by = zip(*answers, strict=True)
    assert len(statuses) > 20, "the load generator barely ran"
    assert set(statuses) == {200}, f"failed requests during the swap: {set(statuses)}"
    assert versions[0] == served["version"] and versions[-1] == new_version
    # the workers converge: old answers stop within a bounded time of the first new one (a
    # worker's poll, then its load of the new version: at most what its bring-up took, plus 5 s)
    first_new = versions.index(new_version)
    last_old = max(i for i, v in enumerate(versions) if v == served["version"])
    lag, due = stamps[last_old] - stamps[first_new], poll + server.bring_up + 5
    print(f"old answers until {lag:.1f} s after the first new one (due within {due:.1f} s); "
          f"{len(versions)} answers from {len(set(by))} workers")
    assert lag < due, f"a worker kept the old version {lag:.1f} s, due within {due:.1f} s"
    assert all(v == new_version for v in versions[last_old + 1:])
    assert list(versions[-20:]) == [new_version] * 20

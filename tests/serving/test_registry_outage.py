"""The model registry goes away: a real `mlflow server` is stopped under a running service, the
service is restarted while it is down, and the registry comes back on the same port and backend."""

from __future__ import annotations

import time

import pytest

from tests.conftest import API_KEYS
from tests.serving.conftest import champion, churn_serve, http, promote_a_copy, score_ids, wait_until

pytestmark = pytest.mark.slow


def _ready(url):
    return http(url, "/readyz", key=None)[:2]


def test_the_service_rides_out_a_registry_outage_and_restarts_from_its_local_copy(
        registry, served, tmp_path):
    mlflow = registry["server"]
    if mlflow.proc is None:
        mlflow.start()
    version = champion(registry["url"])
    env = {"MLFLOW_TRACKING_URI": registry["url"], "CHURN_STORE": served["CHURN_STORE"],
           "CHURN_API_KEY": ",".join(API_KEYS), "CHURN_POLL_SECONDS": "1",
           "CHURN_MODEL_CACHE": str(tmp_path / "cache")}
    kept = churn_serve(tmp_path, env, name="kept")
    empty = churn_serve(tmp_path, {**env, "CHURN_MODEL_CACHE": str(tmp_path / "empty")},
                        name="empty")
    ids = served["features"].frame["customer_id"].head(3).tolist()
    try:
        kept.start()
        status, body = _ready(kept.url)
        assert status == 200 and body["status"] == "ok", body
        assert body["model"]["source"] == "registry" and body["model"]["version"] == version
        assert list((tmp_path / "cache").glob("*/current.json")), "no local copy kept"

        # 1. the registry stops: the service keeps answering, says it is degraded
        stopping = time.monotonic()
        mlflow.stop()
        stopped = time.monotonic()
        body = wait_until(lambda: (b := _ready(kept.url)[1])["status"] == "degraded" and b,
                          timeout=30, what="degraded")
        print(f"registry stopped in {stopped - stopping:.1f} s; degraded reported "
              f"{time.monotonic() - stopping:.1f} s after the stop began")
        assert body["model"]["degraded"] and body["model"]["registry_error"]
        status, scored, _ = score_ids(kept.url, ids)
        assert status == 200 and scored["model"]["degraded"] is True
        assert all(r["error"] is None and r["model_version"] == version for r in scored["results"])

        # 2. restarted while the registry is down: up in seconds, from the local copy (the
        # service of step 3 boots meanwhile: one wait for both)
        kept.stop()
        restarted = time.monotonic()
        kept.start(wait=False)
        empty.start(wait=False)
        kept.wait_ready(timeout=120)
        print(f"restarted with the registry down: ready in {time.monotonic() - restarted:.1f} s")
        status, body = _ready(kept.url)
        assert status == 200 and body["status"] == "degraded", body
        assert body["model"]["source"] == "cache" and body["model"]["version"] == version
        assert body["model"]["copy_saved_at"]
        status, scored, _ = score_ids(kept.url, ids)
        assert status == 200 and scored["model"] == {"name": "churn", "version": version,
                                                     "source": "cache", "degraded": True}

        # 3. no local copy and no registry: alive, not ready, scoring says why (no crash loop)
        empty.wait_ready(timeout=120, path="/livez")
        status, body = wait_until(lambda: (r := _ready(empty.url))[1].get("status") and r,
                                  timeout=30, what="a readiness answer")
        assert status == 503 and body["status"] == "not ready", body
        assert "no model loaded" in body["problems"]
        status, scored, _ = score_ids(empty.url, ids)
        assert status == 503 and "no model loaded" in str(scored), scored
        time.sleep(3)
        assert empty.proc.poll() is None, "the service without a model exited"

        # 4. the registry comes back on the same port and backend: both pick it up
        mlflow.start()
        back = time.monotonic()
        wait_until(lambda: _ready(kept.url)[1]["status"] == "ok", timeout=30, what="kept ok")
        print(f"registry picked up again {time.monotonic() - back:.1f} s after it answered")
        status, body = wait_until(lambda: (r := _ready(empty.url))[1]["status"] == "ok" and r,
                                  timeout=60, what="the empty one ready")
        assert status == 200 and body["model"]["source"] == "registry"
        assert empty.log().count("no model: the registry cannot be reached") == 1

        # 5. and a promotion made now is served
        new = promote_a_copy(registry["url"])
        promoted = time.monotonic()
        wait_until(lambda: score_ids(kept.url, ids)[1]["results"][0]["model_version"] == new,
                   timeout=60, what="the new version")
        print(f"version {new} served {time.monotonic() - promoted:.1f} s after its promotion")
        status, scored, _ = score_ids(kept.url, ids)
        assert scored["model"]["source"] == "registry" and not scored["model"]["degraded"]
        for server in (kept, empty):
            assert "Traceback" not in server.log(), server.log_path
    finally:
        kept.stop()
        empty.stop()
        if mlflow.proc is None:
            mlflow.start()

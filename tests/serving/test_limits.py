"""API keys, rate limits, open and closed paths, bounded metric labels, MLflow timeouts: in
process, on the middleware and the settings (the real server repeats the key cases in
test_service_faults.py)."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from serving.limits import TokenBuckets, route_labels
from serving.middleware import ApiKeyMiddleware, ApiKeys, ServiceGate, publish_readiness
from serving.settings import MIN_KEY_CHARS, ServeSettings, ServeSettingsError, read_api_keys

KEY_A = "a" * 40
KEY_B = "b" * 32


# --- key files and key length --------------------------------------------------------------------

def test_comments_and_blank_lines_in_a_key_file_are_not_keys(tmp_path):
    (tmp_path / "keys").write_text(f"# CRM production key, rotated 2026-01\n\n  {KEY_A}  \n"
                                   f"#{KEY_B}\n{KEY_B}\n")
    keys = read_api_keys({"CHURN_API_KEY_FILE": str(tmp_path / "keys")})
    assert keys == [KEY_A, KEY_B]


@pytest.mark.parametrize("env", [
    {"CHURN_API_KEY": f"{KEY_A},short-key-abc"},
    {"CHURN_API_KEY_FILE": "FILE"},
], ids=["variable", "file"])
def test_a_short_key_is_refused_without_showing_it(tmp_path, env):
    (tmp_path / "keys").write_text(f"{KEY_A}\n# fine\nshort-key-abc\n")
    env = {k: v.replace("FILE", str(tmp_path / "keys")) for k, v in env.items()}
    with pytest.raises(ServeSettingsError) as err:
        ServeSettings.from_env(env)
    message = str(err.value)
    assert f"is 13 characters; keys need at least {MIN_KEY_CHARS}" in message
    assert "short-key-abc" not in message and KEY_A not in message
    if "CHURN_API_KEY_FILE" in env:
        assert "line 3" in message


def test_keys_are_secret_in_the_settings(tmp_path):
    s = ServeSettings.from_env({"CHURN_API_KEY": KEY_A})
    assert KEY_A not in repr(s) and KEY_A not in str(s.model_dump())


def test_the_limits_are_settings_with_defaults():
    s = ServeSettings.from_env({"CHURN_API_KEY": KEY_A})
    assert (s.rate_limit, s.rate_burst, s.metrics_open, s.store_check_seconds) == (100, 200,
                                                                                   False, 5)
    s = ServeSettings.from_env({"CHURN_API_KEY": KEY_A, "CHURN_RATE_LIMIT": "0",
                                "CHURN_METRICS_OPEN": "true", "CHURN_STORE_CHECK_SECONDS": "1.5",
                                "CHURN_MODEL_CACHE": "/tmp/x"})
    assert (s.rate_limit, s.metrics_open, s.store_check_seconds, str(s.model_cache)) == (
        0, True, 1.5, "/tmp/x")
    assert s.access_log is True, "the access log is on unless turned off"
    assert ServeSettings.from_env({"CHURN_API_KEY": KEY_A, "CHURN_ACCESS_LOG": "0"}).access_log \
        is False
    with pytest.raises(ServeSettingsError, match="rate_limit"):
        ServeSettings.from_env({"CHURN_API_KEY": KEY_A, "CHURN_RATE_LIMIT": "-1"})


@pytest.mark.parametrize("name", ["CHURN_ACCESS_LOG", "CHURN_METRICS_OPEN",
                                  "CHURN_ALLOW_ANONYMOUS"])
def test_a_yes_no_setting_with_another_value_is_refused_and_named(name):
    for value, expected in (("no", False), ("YES", True), ("", name == "CHURN_ACCESS_LOG")):
        s = ServeSettings.from_env({"CHURN_API_KEY": KEY_A, name: value})
        got = {"CHURN_ACCESS_LOG": s.access_log, "CHURN_METRICS_OPEN": s.metrics_open,
               "CHURN_ALLOW_ANONYMOUS": s.allow_anonymous}[name]
        assert got is expected, (name, value)
    with pytest.raises(ServeSettingsError, match=f"{name} must be .* not 'off-ish'"):
        ServeSettings.from_env({"CHURN_API_KEY": KEY_A, name: "off-ish"})


def test_serve_warns_when_others_can_read_the_key_file(tmp_path, monkeypatch):
    import subprocess

    from typer.testing import CliRunner

    from churn.cli import app
    from features.store import materialize
    from tests.features.test_store import _frame

    monkeypatch.setattr(subprocess, "call", lambda *a, **k: 0)
    monkeypatch.delenv("CHURN_API_KEY", raising=False)
    materialize(_frame(), ["recency_days"], tmp_path / "s.sqlite")
    keys = tmp_path / "keys"
    keys.write_text(KEY_A + "\n")
    args = ["serve", "--store", str(tmp_path / "s.sqlite"), "--api-key-file", str(keys)]
    os.chmod(keys, 0o644)
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0 and "chmod 600" in run.output, run.output
    assert KEY_A not in run.output
    os.chmod(keys, stat.S_IRUSR | stat.S_IWUSR)
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0 and "chmod" not in run.output and KEY_A not in run.output


# --- MLflow timeouts -----------------------------------------------------------------------------

def test_mlflow_requests_are_bounded_unless_set(monkeypatch):
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    from scoring.model_store import MLFLOW_HTTP_BOUNDS, bound_mlflow_requests, use_tracking

    for name in MLFLOW_HTTP_BOUNDS:  # set, then removed: the teardown restores what was there
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 120, "MLflow's own default (minutes per call)"
    use_tracking("sqlite:///:memory:")
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 5 and MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 2
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    assert bound_mlflow_requests(env)["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30", "a set value wins"
    import mlflow

    mlflow.set_tracking_uri(None)


# --- the token bucket and the route labels -------------------------------------------------------

def test_a_token_bucket_allows_the_burst_then_the_rate_per_key():
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take(0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take(0) == pytest.approx(0.5), "empty: one token in 1/rate seconds"
    assert buckets.take(1) == 0, "another key has its own bucket"
    now[0] = 0.5
    assert buckets.take(0) == 0 and buckets.take(0) > 0
    now[0] = 100.0
    assert [buckets.take(0) for _ in range(4)][:3] == [0, 0, 0], "refills up to the burst only"
    assert TokenBuckets(rate=0, burst=1).take(0) == 0, "rate 0: no limit"
    assert TokenBuckets.retry_after(0.2) == "1" and TokenBuckets.retry_after(2.1) == "3"


def test_route_labels_are_the_known_routes_only():
    label = route_labels(("/score",))
    assert label("/score") == "/score" and label("/metrics") == "/metrics"
    assert label("/static_content/x.js") == "/static_content"
    for path in ("/score/", "/admin", "/metricsX", "/static_contentX", "/" + "x" * 500):
        assert label(path) is None, path


# --- the key middleware, in process --------------------------------------------------------------

async def _ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(mw, path: str, key: str | None = None) -> tuple[int, dict, dict]:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(mw({"type": "http", "method": "POST", "path": path, "headers": headers},
                   receive, send))
    start, body = sent[0], sent[1]["body"]
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            json.loads(body) if body != b"ok" else {})


def test_each_key_is_limited_on_its_own_with_429_and_retry_after():
    mw = ApiKeyMiddleware(_ok_app, (KEY_A, KEY_B), rate=1.0, burst=5)
    mw.keys.buckets.clock = lambda: 0.0  # no refill, however long the calls take
    statuses = [_call(mw, "/score", KEY_A)[0] for _ in range(8)]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    status, headers, body = _call(mw, "/score", KEY_A)
    assert status == 429 and headers["retry-after"] == "1" and "rate limit" in body["error"]
    assert _call(mw, "/score", KEY_B)[0] == 200, "the other key is not slowed"
    assert _call(mw, "/score", "c" * 40)[0] == 401, "an unknown key is refused, not limited"


def test_metrics_need_a_key_unless_configured_open():
    closed = ApiKeyMiddleware(_ok_app, (KEY_A,))
    assert _call(closed, "/metrics")[0] == 401
    assert _call(closed, "/metrics", KEY_A)[0] == 200
    assert _call(closed, "/readyz")[0] == 200 and _call(closed, "/livez")[0] == 200
    assert _call(ApiKeyMiddleware(_ok_app, (KEY_A,), metrics_open=True), "/metrics")[0] == 200


# --- the service's gate (keys, request ids, access log, body size, JSON only), in process ------

async def _reading_app(scope, receive, send):
    """Reads the whole body, then answers 200 with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _gate_call(gate, chunks=(b"{}",), headers=(), path="/score"):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(b"authorization", f"Bearer {KEY_A}".encode()), *headers]}
    asyncio.run(gate(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


@pytest.fixture
def ready():
    """A worker that can score; what was published before (a service in this process) is put
    back afterwards."""
    from serving import middleware

    saved = dict(middleware._published)
    publish_readiness(lambda: (True, {"status": "ok"}), lambda: None)
    yield
    middleware._published.clear()
    middleware._published.update(saved)


def test_the_gate_gives_every_answer_a_request_id_and_logs_it_once(ready, caplog):
    gate = ServiceGate(_reading_app, ApiKeys((KEY_A,)))
    with caplog.at_level("INFO", logger="churn.access"):
        status, headers, _ = _gate_call(gate)
        first = headers[b"x-request-id"].decode()
        again = _gate_call(gate)[1][b"x-request-id"].decode()
        theirs = _gate_call(gate, headers=[(b"x-request-id", b"crm-42")])[1][b"x-request-id"]
        refused = ServiceGate(_reading_app, ApiKeys((KEY_B,)))
        status_401, headers_401, _ = _gate_call(refused)
    assert status == 200 and first and again != first and theirs == b"crm-42"
    assert status_401 == 401 and headers_401[b"x-request-id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "churn.access"]
    assert len(lines) == 4, lines
    assert first in lines[0] and "POST /score -> 200" in lines[0]
    assert "crm-42" in lines[2] and "-> 401" in lines[3]
    assert not any(KEY_A in line for line in lines), "a key was logged"
    caplog.clear()
    quiet = ServiceGate(_reading_app, ApiKeys((KEY_A,)), access_log=False)
    with caplog.at_level("INFO", logger="churn.access"):
        assert _gate_call(quiet)[1][b"x-request-id"], "ids stay when the log is off"
    assert not [r for r in caplog.records if r.name == "churn.access"]


def test_the_gate_refuses_large_bodies_declared_or_streamed_and_non_json(ready):
    gate = ServiceGate(_reading_app, ApiKeys((KEY_A,)), max_bytes=1024)
    assert _gate_call(gate, chunks=(b"x" * 600, b"x" * 300))[:1] == (200,)
    status, headers, body = _gate_call(gate, chunks=(b"x" * 600, b"x" * 600))
    assert status == 413 and b"1024 bytes" in body and headers[b"x-request-id"], "streamed"
    status, _, body = _gate_call(gate, headers=[(b"content-length", b"5000")])
    assert status == 413, "declared"
    # a small declared length does not switch the count off (h11 lets a chunked body follow it)
    status, _, body = _gate_call(gate, headers=[(b"content-length", b"5"),
                                                (b"transfer-encoding", b"chunked")],
                                 chunks=(b"x" * 600, b"x" * 600))
    assert status == 413, "declared small, sent large"
    status, _, body = _gate_call(gate, headers=[(b"content-type", b"text/plain")])
    assert status == 415 and b"application/json" in body
    assert _gate_call(gate, headers=[(b"content-type", b"application/json; charset=utf-8")]
                      )[0] == 200


def test_the_gate_answers_503_while_nothing_can_score_and_readyz_always(ready):
    gate = ServiceGate(_reading_app, ApiKeys((KEY_A,)))
    publish_readiness(lambda: (False, {"status": "not ready"}), lambda: "no model loaded yet")
    status, headers, body = _gate_call(gate)
    assert status == 503 and headers[b"retry-after"] == b"5" and b"no model" in body
    status, _, body = _gate_call(gate, path="/readyz")
    assert status == 503 and json.loads(body) == {"status": "not ready"}

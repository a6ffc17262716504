"""The service's own request handling, one pure-ASGI layer: readiness, request id and access log,
API keys and per-key rate limits, 503 while nothing can score, JSON only, body size.

One layer, not six: each ASGI middleware costs a coroutine, and most of these needed the headers
decoded into a dict of their own; ``ServiceGate`` decodes them once and wraps ``send`` and
``receive`` only when it has to. The checks and their order are those of the six middlewares it
replaced (``ApiKeyMiddleware`` stays on its own for tests and other apps).

Nothing here logs or echoes a key, a body or a customer id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

from serving.limits import TokenBuckets

log = logging.getLogger("churn.access")

PROBE_PATHS = ("/healthz", "/livez", "/readyz")
PUBLIC_PATHS = ("/docs.json", "/schema.json", "/static_content", "/assets")
METRICS_PATH = "/metrics"
BODY_METHODS = ("POST", "PUT", "PATCH")


async def _reply(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())] + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


def _is_open(path: str, metrics_open: bool = True) -> bool:
    """Paths served without a key: probes, the API's description, and /metrics when open."""
    return (path == "/" or path.startswith(PROBE_PATHS + PUBLIC_PATHS)
            or (metrics_open and path == METRICS_PATH))


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


# --- request ids -------------------------------------------------------------------------------
# A random prefix per worker process and a counter: unique across workers and restarts without
# a uuid4 (a system call for randomness) on every request.
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


# --- API keys ----------------------------------------------------------------------------------
class ApiKeys:
    """Scoring (and /metrics unless ``metrics_open``) needs ``Authorization: Bearer <key>``;
    each key may send ``rate`` requests a second with bursts of ``burst`` (429 beyond)."""

    def __init__(self, keys: tuple[str, ...] = (), allow_anonymous: bool = False,
                 metrics_open: bool = False, rate: float = 0.0, burst: int = 1):
        self.hashes = [hashlib.sha256(k.encode()).digest() for k in keys]
        self.allow_anonymous = allow_anonymous
        self.metrics_open = metrics_open
        self.buckets = TokenBuckets(rate, burst)

    def _key(self, header: str | None) -> int | None:
        """The index of the key presented (-1 for anyone when anonymous access is on)."""
        if self.allow_anonymous:
            return -1
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for i, h in enumerate(self.hashes):  # compare with every key: no timing hint
            if secrets.compare_digest(digest, h):
                found = i
        return found

    def refusal(self, scope, headers: dict[str, str]) -> tuple[int, dict, list] | None:
        """None when the request may go ahead, else (status, body, extra headers)."""
        if _is_open(scope.get("path", ""), self.metrics_open) or scope.get("method") == "OPTIONS":
            return None
        key = self._key(headers.get("authorization"))
        if key is None:
            return (401, {"error": "missing or invalid API key: send "
                                   "'Authorization: Bearer <key>'"},
                    [(b"www-authenticate", b"Bearer")])
        wait = self.buckets.take(key)
        if wait > 0:
            after = TokenBuckets.retry_after(wait)
            return (429, {"error": f"rate limit of {self.buckets.rate:g} requests/s for this key "
                                   f"exceeded: retry in {after} s"},
                    [(b"retry-after", after.encode())])
        return None


class ApiKeyMiddleware:
    """``ApiKeys`` as a middleware of its own."""

    def __init__(self, app, keys: tuple[str, ...] = (), allow_anonymous: bool = False,
                 metrics_open: bool = False, rate: float = 0.0, burst: int = 1):
        self.app = app
        self.keys = ApiKeys(keys, allow_anonymous, metrics_open, rate, burst)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refused = self.keys.refusal(scope, _headers(scope))
            if refused:
                return await _reply(send, *refused)
        return await self.app(scope, receive, send)


# --- readiness ---------------------------------------------------------------------------------
# One service instance per worker process: it publishes how to judge its readiness here, and the
# gate below answers /readyz with it (BentoML's own /readyz says only 200 or 503, and BentoML
# turns an API's own 503 into "an unexpected error").
_published: dict[str, Callable] = {}


def publish_readiness(report: Callable[[], tuple[bool, dict[str, Any]]],
                      unavailable: Callable[[], str | None]) -> None:
    """``report()``: (ready, /readyz body); ``unavailable()``: why the API cannot answer now."""
    _published.update(report=report, unavailable=unavailable)


# --- the gate ----------------------------------------------------------------------------------
class ServiceGate:
    """Everything the service checks before BentoML parses a request, outermost first:

    1. ``GET /readyz``: 200 when the service can score (``status`` ok or degraded), else 503,
       with a JSON body saying which model and which store version answer, and any problem.
    2. A request id (the client's ``X-Request-ID``, at most 64 characters, or a new one) in the
       answer's ``X-Request-ID`` header and in one access-log line per request (id, method,
       path, status, milliseconds; open paths are not logged). Never bodies, ids or keys.
    3. API key and per-key rate limit (``ApiKeys``): 401, 429.
    4. 503 with the reason and Retry-After while no model is loaded.
    5. 413 for a body over ``max_bytes``, declared or streamed (on every path).
    6. 415 for a declared body type other than JSON.
    """

    def __init__(self, app, keys: ApiKeys, max_bytes: int = 2_000_000,
                 access_log: bool = True):
        self.app, self.keys, self.max_bytes, self.access_log = app, keys, max_bytes, access_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path == "/readyz":
            if "report" not in _published:
                return await _reply(send, 503, {"status": "starting"})
            ready, body = _published["report"]()
            return await _reply(send, 200 if ready else 503, body)
        headers = _headers(scope)
        request_id = headers.get("x-request-id", "")[:64] or new_request_id()
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        start = time.perf_counter()
        status = 500
        too_big = False
        started = False

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                if too_big:  # the app answered before it saw the whole body: 413 instead
                    started = True
                    return await _reply(send, 413, self._too_big(), [id_header])
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif too_big:
                return None
            return await send(message)

        async def limited_receive():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        seen = 0
        try:
            refused = self._refusal(scope, path, headers)
            if refused:
                status = refused[0]
                return await _reply(send, refused[0], refused[1], [*refused[2], id_header])
            # every body is counted as it arrives, declared length or not: a request may declare
            # a small Content-Length and send a chunked body (h11 accepts both headers)
            await self.app(scope, limited_receive, send_with_id)
            if too_big:
                status = 413
        finally:
            if self.access_log and not _is_open(path):
                log.info("request %s %s %s -> %d in %.1f ms", request_id, scope.get("method"),
                         path, status, (time.perf_counter() - start) * 1000)

    def _too_big(self) -> dict:
        return {"error": f"request body over {self.max_bytes} bytes"}

    def _refusal(self, scope, path: str, headers: dict[str, str]) -> tuple[int, dict, list] | None:
        refused = self.keys.refusal(scope, headers)
        if refused:
            return refused
        is_open = _is_open(path)
        if not is_open:
            why = _published["unavailable"]() if "unavailable" in _published else "starting"
            if why:
                return 503, {"error": why}, [(b"retry-after", b"5")]
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return 413, self._too_big(), []
        if not is_open and scope.get("method") in BODY_METHODS:
            ctype = headers.get("content-type")
            if ctype is not None and ctype.split(";")[0].strip().lower() != "application/json":
                return 415, {"error": f"content-type {ctype!r} is not supported: send "
                                      "application/json"}, []
        return None


class EnvServiceGate(ServiceGate):
    """``ServiceGate`` with keys, limits and switches from the service settings (read when the
    worker starts)."""

    def __init__(self, app):
        from serving.settings import ServeSettings

        s = ServeSettings.from_env()
        keys = ApiKeys(tuple(k.get_secret_value() for k in s.api_keys), s.allow_anonymous,
                       s.metrics_open, s.rate_limit, s.rate_burst)
        super().__init__(app, keys, s.max_body_bytes, s.access_log)

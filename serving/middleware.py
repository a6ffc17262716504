"""ASGI middleware: API keys and per-key rate limits, body size, JSON only, readiness, access log.

Nothing here logs or echoes a key, a body or a customer id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from serving.limits import TokenBuckets

log = logging.getLogger("churn.access")

PROBE_PATHS = ("/healthz", "/livez", "/readyz")
PUBLIC_PATHS = ("/docs.json", "/schema.json", "/static_content", "/assets")
METRICS_PATH = "/metrics"


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


class ApiKeyMiddleware:
    """Scoring (and /metrics unless ``metrics_open``) needs ``Authorization: Bearer <key>``;
    each key may send ``rate`` requests a second with bursts of ``burst`` (429 beyond)."""

    def __init__(self, app, keys: tuple[str, ...] = (), allow_anonymous: bool = False,
                 metrics_open: bool = False, rate: float = 0.0, burst: int = 1):
        self.app = app
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

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _is_open(scope.get("path", ""), self.metrics_open) \
                or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        key = self._key(_headers(scope).get("authorization"))
        if key is None:
            return await _reply(send, 401, {"error": "missing or invalid API key: send "
                                                     "'Authorization: Bearer <key>'"},
                                [(b"www-authenticate", b"Bearer")])
        wait = self.buckets.take(key)
        if wait > 0:
            after = TokenBuckets.retry_after(wait)
            return await _reply(send, 429, {"error": f"rate limit of {self.buckets.rate:g} "
                                                     f"requests/s for this key exceeded: retry "
                                                     f"in {after} s"},
                                [(b"retry-after", after.encode())])
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int = 2_000_000):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _headers(scope).get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reply(send, 413, {"error": f"request body over {self.max_bytes} bytes"})
        seen = 0
        too_big = False

        async def limited():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        started = False

        async def guarded_send(message):
            nonlocal started
            if too_big and not started:
                started = True
                await _reply(send, 413, {"error": f"request body over {self.max_bytes} bytes"})
                return
            if too_big:
                return
            started = True
            await send(message)

        return await self.app(scope, limited, guarded_send)


class AccessLogMiddleware:
    """One line per request: id, method, path, status, milliseconds. Never bodies, ids or keys."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _headers(scope).get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        start = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": list(message.get("headers", []))
                           + [(b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not _is_open(scope.get("path", "")):
                log.info("request %s %s %s -> %d in %.1f ms", request_id, scope.get("method"),
                         scope.get("path"), status["code"], (time.perf_counter() - start) * 1000)


class JsonOnlyMiddleware:
    """The API speaks JSON: any other declared body type gets 415 before anything parses it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH") \
                and not _is_open(scope.get("path", "")):
            ctype = _headers(scope).get("content-type")
            if ctype is not None and ctype.split(";")[0].strip().lower() != "application/json":
                return await _reply(send, 415, {"error": f"content-type {ctype!r} is not "
                                                         "supported: send application/json"})
        return await self.app(scope, receive, send)


# --- readiness ---------------------------------------------------------------------------------
# One service instance per worker process: it publishes how to judge its readiness here, and the
# middleware below answers /readyz with it (BentoML's own /readyz says only 200 or 503, and
# BentoML turns an API's own 503 into "an unexpected error").
_published: dict[str, Callable] = {}


def publish_readiness(report: Callable[[], tuple[bool, dict[str, Any]]],
                      unavailable: Callable[[], str | None]) -> None:
    """``report()``: (ready, /readyz body); ``unavailable()``: why the API cannot answer now."""
    _published.update(report=report, unavailable=unavailable)


class ReadinessMiddleware:
    """``GET /readyz``: 200 when the service can score (``status`` ok or degraded), else 503,
    with a JSON body saying which model and which store version answer, and any problem."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != "/readyz":
            return await self.app(scope, receive, send)
        if "report" not in _published:
            return await _reply(send, 503, {"status": "starting"})
        ready, body = _published["report"]()
        return await _reply(send, 200 if ready else 503, body)


class UnavailableMiddleware:
    """The API answers 503 with the reason (and Retry-After) while it cannot score at all."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not _is_open(scope.get("path", "")):
            why = _published["unavailable"]() if "unavailable" in _published else "starting"
            if why:
                return await _reply(send, 503, {"error": why}, [(b"retry-after", b"5")])
        return await self.app(scope, receive, send)


class EnvApiKeyMiddleware(ApiKeyMiddleware):
    """ApiKeyMiddleware with keys and limits from the service settings (read when the worker
    starts)."""

    def __init__(self, app):
        from serving.settings import ServeSettings

        s = ServeSettings.from_env()
        super().__init__(app, tuple(k.get_secret_value() for k in s.api_keys), s.allow_anonymous,
                         s.metrics_open, s.rate_limit, s.rate_burst)


class EnvBodyLimitMiddleware(BodyLimitMiddleware):
    def __init__(self, app):
        from serving.settings import ServeSettings

        super().__init__(app, ServeSettings.from_env().max_body_bytes)

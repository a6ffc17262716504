"""ASGI middleware: API-key authentication, request size limit, access log without customer data."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid

log = logging.getLogger("churn.access")

OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/schema.json",
              "/static_content", "/assets")


async def _reply(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())] + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


def _is_open(path: str) -> bool:
    return path == "/" or path.startswith(OPEN_PATHS)


class ApiKeyMiddleware:
    """Scoring endpoints need ``Authorization: Bearer <key>``; health and metrics stay open."""

    def __init__(self, app, keys: tuple[str, ...] = (), allow_anonymous: bool = False):
        self.app = app
        self.hashes = [hashlib.sha256(k.encode()).digest() for k in keys]
        self.allow_anonymous = allow_anonymous

    def _ok(self, header: str | None) -> bool:
        if self.allow_anonymous:
            return True
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        digest = hashlib.sha256(token.strip().encode()).digest()
        match = False
        for h in self.hashes:
            match |= secrets.compare_digest(digest, h)
        return match

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _is_open(scope.get("path", "")) \
                or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        if not self._ok(headers.get("authorization")):
            return await _reply(send, 401, {"error": "missing or invalid API key: send "
                                                     "'Authorization: Bearer <key>'"},
                                [(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int = 2_000_000):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
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
    """One line per request: id, method, path, status, milliseconds. Never bodies or ids."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex[:16]
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


class EnvApiKeyMiddleware(ApiKeyMiddleware):
    """ApiKeyMiddleware with keys from the service settings (read when the worker starts)."""

    def __init__(self, app):
        from serving.settings import ServeSettings

        s = ServeSettings.from_env()
        super().__init__(app, tuple(k.get_secret_value() for k in s.api_keys), s.allow_anonymous)


class EnvBodyLimitMiddleware(BodyLimitMiddleware):
    def __init__(self, app):
        from serving.settings import ServeSettings

        super().__init__(app, ServeSettings.from_env().max_body_bytes)


class JsonOnlyMiddleware:
    """The API speaks JSON: any other declared body type gets 415 before anything parses it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH") \
                and not _is_open(scope.get("path", "")):
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            ctype = headers.get("content-type")
            if ctype is not None and ctype.split(";")[0].strip().lower() != "application/json":
                return await _reply(send, 415, {"error": f"content-type {ctype!r} is not "
                                                         "supported: send application/json"})
        return await self.app(scope, receive, send)

"""Workarounds for two BentoML 1.4.39 problems, applied when the service is imported.

1. The request timeout keeps every finished request alive (``cancel_request_timers``).
2. Request metrics are labelled by the raw request path (``bound_metric_labels``).

On 1:

``bentoml._internal.server.http.traffic.TimeoutMiddleware`` starts a ``loop.call_later`` timer
per request and never cancels it, so every finished request's future, context and tracing span
stay alive for the whole timeout (30 s here). At a few hundred requests per second that is
hundreds of thousands of live objects, and each full garbage collection then stalls all
requests in flight (measured: p99 66-238 ms at 100 req/s in the first latency run after a
throughput run). The replacement below is the same middleware with the timer cancelled when the
request ends; nothing else changes (a request over the timeout still gets BentoML's 504).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


async def _call(self, scope, receive, send) -> None:
    from starlette.responses import JSONResponse

    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            resp = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"},
                status_code=504)
            await resp(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


def cancel_request_timers() -> bool:
    """Install the fix; False (and a warning) if BentoML's middleware is not the one expected."""
    try:
        from bentoml._internal.server.http.traffic import TimeoutMiddleware
    except ImportError:
        log.warning("BentoML's TimeoutMiddleware not found: request timers left as they are")
        return False
    if not hasattr(TimeoutMiddleware, "_set_timer_out"):
        log.warning("BentoML's TimeoutMiddleware changed: request timers left as they are")
        return False
    TimeoutMiddleware.__call__ = _call
    return True


# --- 2. metrics labels -------------------------------------------------------------------------
# ``bentoml._internal.server.http.instruments.RunnerTrafficMetricsMiddleware`` (the outermost
# middleware, so it sees requests before authentication) labels its counters, histograms and
# gauges with ``scope["path"]`` as sent: every distinct path, even one answered 401 or 404, adds
# series that live for the life of the worker (5,000 random paths grew /metrics to 38 MB). The
# replacement below answers a path the service does not serve with 404 before anything counts
# it, and labels the static folders by folder; everything else is BentoML's middleware.

_REAL_PATH = "churn.real_path"


class _RestorePath:
    """Between BentoML's metrics middleware and the rest: give routing the real path back."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if _REAL_PATH in scope:
            scope = {**scope, "path": scope[_REAL_PATH]}
        return await self.app(scope, receive, send)


async def _not_found(scope, send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": "not found"}).encode()
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bound_metric_labels(label: Callable[[str], str | None]) -> bool:
    """Install the bounded metrics middleware; ``label(path)`` gives a path's label, or None
    for a path to refuse. False (and a warning) if BentoML's middleware is not the one expected."""
    try:
        from bentoml._internal.server.http import instruments
    except ImportError:
        log.warning("BentoML's metrics middleware not found: metric labels left as they are")
        return False
    base = instruments.RunnerTrafficMetricsMiddleware
    base = getattr(base, "_churn_base", base)
    if not hasattr(base, "_setup"):
        log.warning("BentoML's metrics middleware changed: metric labels left as they are")
        return False

    class BoundedTrafficMetricsMiddleware(base):
        _churn_base = base

        def __init__(self, app, *args, **kwargs):
            super().__init__(_RestorePath(app), *args, **kwargs)

        async def __call__(self, scope, receive, send):
            if scope["type"] in ("http", "websocket"):
                path = scope["path"]
                name = label(path)
                if name is None:
                    return await _not_found(scope, send)
                if name != path:
                    scope = {**scope, "path": name, _REAL_PATH: path}
            return await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = BoundedTrafficMetricsMiddleware
    return True

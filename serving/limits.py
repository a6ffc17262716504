"""Per-key request limits: a token bucket for each API key, and the routes the service knows.

Both are bounded by configuration, never by what clients send: one bucket per configured key
(anonymous callers share one), one metrics label per known route.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# BentoML's own routes besides the API's; anything else is answered 404 before it is counted.
SYSTEM_ROUTES = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json",
                           "/schema.json"})
STATIC_PREFIXES = ("/static_content", "/assets")


def route_labels(api_routes: tuple[str, ...]) -> Callable[[str], str | None]:
    """A function giving a request path its metrics label: the route itself, the static folder
    it is under, or None for a path the service does not serve."""
    exact = SYSTEM_ROUTES | set(api_routes)

    def label(path: str) -> str | None:
        if path in exact:
            return path
        for prefix in STATIC_PREFIXES:
            if path.startswith(prefix + "/"):
                return prefix
        return None

    return label


class TokenBuckets:
    """``rate`` requests per second per key with bursts up to ``burst``; ``rate`` 0 = no limit.

    ``take(key)`` returns 0 when the request may go ahead, else the seconds until it could.
    Buckets are kept for the keys seen, and keys are the service's own (indexes into its key
    list), so their number is bounded by the configuration."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, key: int) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

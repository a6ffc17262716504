"""A small load generator, run as its own process: closed loop (max throughput) or open loop
(a fixed request rate, latency percentiles). Loopback only; bounded in count and time."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import numpy as np


async def closed_loop(url, bodies, headers, concurrency: int, seconds: float) -> dict:
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=concurrency)) as c:
        async def worker(k: int):
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    ok = (await c.post(url, content=bodies[i % len(bodies)],
                                       headers=headers)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += not ok
                i += concurrency
        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
    return _stats(latencies, errors, elapsed)


async def open_loop(url, bodies, headers, rate: float, seconds: float,
                    warmup: float = 3.0) -> dict:
    """Requests start on a fixed schedule whatever the answers do (latency includes queueing).

    The first ``warmup`` seconds open the connections and are not counted."""
    latencies, errors = [], 0
    n = int(rate * (seconds + warmup))
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=32,
                                                                 max_keepalive_connections=32)) as c:
        async def one(i: int, at: float):
            nonlocal errors
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            try:
                ok = (await c.post(url, content=bodies[i % len(bodies)],
                                   headers=headers)).status_code == 200
            except httpx.HTTPError:  # a timeout on a saturated machine: an error, not a crash
                ok = False
            if i >= rate * warmup:
                latencies.append(time.perf_counter() - at)
                errors += not ok
        start = time.perf_counter() + 0.5
        await asyncio.gather(*(one(i, start + i / rate) for i in range(n)))
        elapsed = time.perf_counter() - start - warmup
    return _stats(latencies, errors, elapsed)


def _stats(latencies, errors, elapsed) -> dict:
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--bodies", required=True, help="JSON file: a list of request bodies")
    p.add_argument("--key")
    p.add_argument("--mode", choices=["closed", "open"], default="closed")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=15)
    a = p.parse_args()
    bodies = [json.dumps(b).encode() for b in json.load(open(a.bodies))]
    headers = {"content-type": "application/json"}
    if a.key:
        headers["Authorization"] = f"Bearer {a.key}"
    run = closed_loop(a.url, bodies, headers, a.concurrency, a.seconds) if a.mode == "closed" \
        else open_loop(a.url, bodies, headers, a.rate, a.seconds)
    print(json.dumps(asyncio.run(run)))


if __name__ == "__main__":
    main()

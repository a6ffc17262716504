"""Serving speed (``make bench-serve``): this service vs. a bare BentoML booster endpoint.

Both run on loopback with one worker; the load generator is a separate process
(``benchmarks/loadgen.py``). This service answers by customer id: online-store lookup, calibrated
score, three reasons, the offer decision, API-key check, access log, metrics. The bare endpoint runs
the same LightGBM booster on a feature vector sent in the request. Measured: closed-loop throughput
(8 concurrent clients) and latency at a fixed 100 requests per second of single-customer calls;
plus the online store's lookup time in process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
KEY = "bench-key-0123456789abcdef0123456789abcdef"  # keys need 32+ characters


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    raise TimeoutError(url)


def _prepare(folder: Path, customers: int) -> dict:
    from features.build import build_feature_set
    from features.config import FeatureConfig, LabelConfig
    from features.io import load_crm
    from features.sample import SampleSpec, generate, write_sample
    from features.store import materialize
    from training.config import TrainConfig
    from training.pipeline import train_on_feature_set
    from training.registry import promote

    write_sample(generate(SampleSpec(customers=customers, months=24, seed=4)), folder / "crm")
    crm = load_crm(folder / "crm")
    cutoffs = [pd.Timestamp(c) for c in ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")]
    fs = build_feature_set(crm, cutoffs, FeatureConfig(), LabelConfig())
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    train_on_feature_set(fs, crm.fingerprint(), FeatureConfig(), TrainConfig(), crm=crm)
    promote("churn")
    latest = build_feature_set(crm, [pd.Timestamp("2026-01-01")], FeatureConfig(),
                               LabelConfig(), population_only=False)
    materialize(latest.frame, latest.feature_names, folder / "store.sqlite")
    from scoring.model_store import load_scorer

    scorer = load_scorer("models:/churn@champion").scorer
    scorer.booster.save_model(str(folder / "booster.txt"))
    sample = latest.frame.sample(2000, random_state=0)
    ours = [{"customers": [{"customer_id": c}], "top_reasons": 3} for c in sample["customer_id"]]
    x = scorer.matrix(sample)
    bare = [{"features": [[None if np.isnan(v) else float(v) for v in row]]} for row in x]
    (folder / "ours.json").write_text(json.dumps(ours))
    (folder / "bare.json").write_text(json.dumps(bare))
    return {"ids": sample["customer_id"].tolist()}


def _start(cmd: list[str], env: dict, log: Path, cwd: Path | None = None):
    # its own process group: `churn serve` starts BentoML's server as a child, and stopping only
    # the parent left that child serving after the benchmark
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True, cwd=cwd)


def _stop(proc, port: int) -> None:
    """Stop a server and everything it started; fail loudly if its port still answers."""
    import signal
    import socket

    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"a server still answers on port {port} after it was stopped")


def _load(url: str, bodies: Path, key: str | None, mode: str, seconds: float) -> dict:
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "--bodies", str(bodies),
           "--mode", mode, "--seconds", str(seconds)]
    if key:
        cmd += ["--key", key]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _server_cpu(root: int) -> float:
    """CPU seconds used so far by a server process and every process under it (its workers):
    the server's own cost per request, which a busy machine or a slow load generator distorts
    less than requests per second."""
    ticks, parent, cpu = os.sysconf("SC_CLK_TCK"), {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)  # fields after the name: state, ppid, pgrp, ...
        parent[pid] = int(fields[1])
        cpu[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    total = 0
    for pid in cpu:
        p = pid
        while p not in (0, 1, root) and p in parent:
            p = parent[p]
        total += cpu[pid] if p == root else 0
    return total / ticks


def _median_range(values: list[float]) -> str:
    return f"{np.median(values):.2f}x (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10,
                        help="length of each throughput run and of each latency run")
    parser.add_argument("--pairs", type=int, default=5,
                        help="paired runs: in each, every endpoint gets one throughput and one "
                             "latency run, in alternating order, while all of them stay up")
    parser.add_argument("--data", type=Path,
                        help="keep the prepared model, store and requests in this folder and "
                             "reuse them on the next run (default: a temporary folder)")
    parser.add_argument("--profile", type=Path,
                        help="instead of the comparison: one closed-loop run of one endpoint "
                             "with py-spy recording its server processes into this file")
    parser.add_argument("--profile-endpoint", default="this service",
                        help="which endpoint --profile measures (a part of its name)")
    parser.add_argument("--before", type=Path,
                        help="also serve the service from this source tree (e.g. an export of "
                             "the last commit: `git archive HEAD | tar -x -C DIR`), as one more "
                             "endpoint in every pair: before/after figures from the same runs")
    parser.add_argument("--before-store", type=Path,
                        help="the online store the --before service reads (default: the same "
                             "as this service's; an older tree may not read the current format: "
                             "write one with that tree's `churn features materialize`)")
    parser.add_argument("--bare-async", action="store_true",
                        help="also serve the bare endpoint with the same fixes and an async API "
                             "(no thread hand-off, as this service's)")
    parser.add_argument("--no-plain", action="store_true",
                        help="leave out the bare endpoint without the fixes (a third less time)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        if args.data and (folder / "prepared.json").exists():
            prep = json.loads((folder / "prepared.json").read_text())
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        else:
            folder.mkdir(parents=True, exist_ok=True)
            prep = _prepare(folder, args.customers)
            (folder / "prepared.json").write_text(json.dumps(prep))
        from features.store import SQLiteStore

        store = SQLiteStore(folder / "store.sqlite")
        ids = prep["ids"]
        t0 = time.perf_counter()
        for cid in ids:
            store.get_rows([cid])  # as the service looks a customer up
        lookup_us = (time.perf_counter() - t0) / len(ids) * 1e6

        # the per-key rate limit is off: the throughput run measures the service, not the limit
        env = {**os.environ, "CHURN_API_KEY": KEY, "CHURN_STORE": str(folder / "store.sqlite"),
               "CHURN_RATE_LIMIT": "0",
               "BARE_BOOSTER": str(folder / "booster.txt")}
        bin_dir = Path(sys.executable).parent
        bare = [str(bin_dir / "bentoml"), "serve", "bare_service:BareBooster", "--working-dir",
                str(HERE)]
        endpoints = [  # (name, command, route, bodies, key, environment, working folder)
            ("this service (by id, 3 reasons, offer)",
             [str(bin_dir / "churn"), "serve"], "/score", folder / "ours.json", KEY, {}, None),
            ("bare endpoint with the same BentoML fixes", bare, "/predict",
             folder / "bare.json", None, {"BARE_FIXES": "1"}, None),
            ("bare BentoML booster endpoint", bare, "/predict", folder / "bare.json", None,
             {"BARE_FIXES": "0"}, None)]
        if args.no_plain:
            endpoints = endpoints[:2]
        if args.bare_async:
            endpoints.append(("bare endpoint with the same fixes, async API", bare, "/predict",
                              folder / "bare.json", None, {"BARE_FIXES": "1", "BARE_ASYNC": "1"},
                              None))
        if args.before:
            before = args.before.resolve()
            endpoints.append((f"this service before (from {before})",
                              [str(bin_dir / "churn"), "serve"], "/score", folder / "ours.json",
                              KEY, {"PYTHONPATH": str(before),
                                    **({"CHURN_STORE": str(args.before_store.resolve())}
                                       if args.before_store else {})}, before))
        if args.profile:
            endpoints = [e for e in endpoints if args.profile_endpoint in e[0]][:1]
        running = []  # (name, url, bodies, key, proc, port)
        runs: dict[str, list[tuple[dict, dict]]] = {e[0]: [] for e in endpoints}
        try:
            for name, cmd, path, bodies, key, extra, cwd in endpoints:
                port = _free_port()
                # a BentoML home of its own: every `bentoml serve` empties its home's Prometheus
                # folder when it starts, which blanks /metrics of any other server sharing it
                # (the other endpoints here, or a test's server running meanwhile)
                home = {"BENTOML_HOME": str(folder / f"bentoml-home-{port}")}
                proc = _start(cmd + ["--port", str(port)], {**env, **extra, **home},
                              folder / f"{port}.log", cwd)
                running.append((name, f"http://127.0.0.1:{port}{path}", bodies, key, proc, port))
                _wait(f"http://127.0.0.1:{port}/readyz", proc)
                _load(running[-1][1], bodies, key, "closed", 3)  # warm-up
            if args.profile:  # py-spy on the server's processes during one closed-loop run
                _, url, bodies, key, proc, _ = running[0]
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record",
                                        "--pid", str(proc.pid), "--subprocesses", "-r", "200",
                                        "-f", "raw", "-o", str(args.profile), "-d",
                                        str(int(args.seconds))])
                try:
                    print(json.dumps(_load(url, bodies, key, "closed", args.seconds)))
                finally:
                    spy.wait(timeout=120)
                return
            for k in range(args.pairs):
                order = running if k % 2 == 0 else [running[1], running[0], *running[2:]]
                for name, url, bodies, key, proc, _ in order:
                    cpu = _server_cpu(proc.pid)
                    closed = _load(url, bodies, key, "closed", args.seconds)
                    closed["cpu_ms"] = (_server_cpu(proc.pid) - cpu) / closed["requests"] * 1e3
                    opened = _load(url, bodies, key, "open", args.seconds)
                    runs[name].append((closed, opened))
                    print(f"pair {k + 1}: {name}: {closed['rps']:,.0f} req/s, p99 at 100 req/s "
                          f"{opened['p99_ms']:.1f} ms", file=sys.stderr)
        finally:
            for *_, proc, port in running:
                _stop(proc, port)
    print(f"online store lookup by id: {lookup_us:.0f} µs per customer (SQLite, in process)")
    print(f"\n| endpoint (1 worker) | throughput (8 clients), median of {args.pairs} | "
          f"p50 / p99 at 100 req/s, medians | p99 of each run | errors |\n|---|---|---|---|---|")
    for name, pairs in runs.items():
        rps = [c["rps"] for c, _ in pairs]
        p50 = [o["p50_ms"] for _, o in pairs]
        p99 = [o["p99_ms"] for _, o in pairs]
        errors = sum(c["errors"] + o["errors"] for c, o in pairs)
        print(f"| {name} | {np.median(rps):,.0f} req/s ({min(rps):,.0f}-{max(rps):,.0f}) | "
              f"{np.median(p50):.1f} / {np.median(p99):.1f} ms | "
              f"{', '.join(f'{v:.0f}' for v in p99)} ms | {errors} |")
    names = list(runs)
    bare_rps = [c["rps"] for c, _ in runs[names[1]]]
    bare_cpu = [c["cpu_ms"] for c, _ in runs[names[1]]]
    print("\nserver CPU per request in the throughput runs, medians: " + ", ".join(
        f"{name} {np.median([c['cpu_ms'] for c, _ in runs[name]]):.2f} ms" for name in names))
    for name in [n for n in names if n.startswith("this service")]:
        rps = [c["rps"] for c, _ in runs[name]]
        cpu = [c["cpu_ms"] for c, _ in runs[name]]
        line = (f"\n{name} / bare endpoint with the same fixes, per pair: throughput "
                f"{_median_range([a / b for a, b in zip(rps, bare_rps, strict=True)])}, "
                f"CPU per request (bare / this) "
                f"{_median_range([b / a for a, b in zip(cpu, bare_cpu, strict=True)])}")
        if len(names) > 2 and names[2].startswith("bare BentoML"):
            plain = [c["rps"] for c, _ in runs[names[2]]]
            line += (f"; throughput / plain bare endpoint: "
                     f"{_median_range([a / b for a, b in zip(rps, plain, strict=True)])}")
        if name == names[0]:  # the same pairs' service from another tree (--before)
            for other in [n for n in names if n.startswith("this service before")]:
                them = [c["rps"] for c, _ in runs[other]]
                their_cpu = [c["cpu_ms"] for c, _ in runs[other]]
                line += (f"; throughput / {other}: "
                         f"{_median_range([a / b for a, b in zip(rps, them, strict=True)])}, "
                         f"CPU per request (before / this) "
                         f"{_median_range([b / a for a, b in zip(cpu, their_cpu, strict=True)])}")
        for other in [n for n in names if n.endswith("async API")]:
            them = [c["rps"] for c, _ in runs[other]]
            line += (f"; throughput / {other}: "
                     f"{_median_range([a / b for a, b in zip(rps, them, strict=True)])}")
        print(line)


if __name__ == "__main__":
    main()

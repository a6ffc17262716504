"""Speed and peak memory of sample generation and the feature build, in memory vs streamed.

On the same customers (24 months, seed 1, blocks of 100k), each stage in a fresh subprocess:

- generation in memory (``write_sample(generate(spec))``: one file per table) vs streamed
  (``write_partitioned``: a part file per block, one block in memory at a time; what
  ``churn data generate`` does above one block), the latter ``bench_scale.stage_generate``;
- the feature build at one cutoff in memory (``load_crm`` of the single files, ``build_feature_set``
  and ``write_feature_set``) vs streamed (``build_to_parquet`` on the part files, default workers:
  what ``churn features build`` does), the latter ``bench_scale.stage_features``;
- the RFM family alone vs the obvious alternative, a pandas ``groupby`` per window (the one family
  both compute), on the single files (the timed part excludes reading them);
- ``churn data validate`` on the part files in one process vs in the build's worker processes
  (what it does since session 14).

Wall: inside the stage (imports and interpreter start excluded). CPU: user + system of the stage
process and its (waited-for) children, since the process started (imports included); for the RFM
rows, of the timed part only. Peak: the stage process's maximum resident memory (VmHWM); for the
streamed build, the process tree's (its forked workers too) sampled by ``memory.tree_peak``:
resident sets summed (pages the workers share with the parent counted once per process) and PSS.

    python benchmarks/bench_data.py --customers 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_scale import events_of, stage_features, stage_generate
from memory import peak_mb, tree_peak

ROOT = Path(__file__).resolve().parent.parent
CUTOFF = "2025-10-01"
MONTHS = 24


def _spec(customers: int):
    from features.sample import SampleSpec

    return SampleSpec(customers=customers, months=MONTHS, seed=1)  # bench_scale's sample too


def stage_generate_memory(work: Path, customers: int) -> dict:
    from features.sample import generate, write_sample

    t0 = time.perf_counter()
    counts = write_sample(generate(_spec(customers)), work / "single")
    events = events_of(counts)
    return {"seconds": time.perf_counter() - t0, "rows": events + counts["customers"],
            "events": events}


def stage_generate_streamed(work: Path, customers: int) -> dict:
    result = stage_generate(work, customers, MONTHS)  # work / "crm", part files
    return {**result, "parts": _spec(customers).blocks}


def stage_features_memory(work: Path) -> dict:
    import pandas as pd

    from features.build import build_feature_set, write_feature_set
    from features.config import FeatureConfig, LabelConfig
    from features.io import load_crm

    t0 = time.perf_counter()
    crm = load_crm(work / "single")
    t1 = time.perf_counter()
    fs = build_feature_set(crm, [pd.Timestamp(CUTOFF)], FeatureConfig(), LabelConfig())
    t2 = time.perf_counter()
    built_peak = peak_mb()
    write_feature_set(fs, work / "features-memory.parquet")
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "read_validate_s": t1 - t0, "build_s": t2 - t1,
            "write_s": t3 - t2, "peak_before_write_mb": built_peak, "rows": len(fs.frame),
            "features": len(fs.specs)}


def stage_features_streamed(work: Path) -> dict:
    from features.parallel import ParallelConfig

    result = stage_features(work, [CUTOFF])  # work / "crm" -> work / "features.parquet"
    parts = len(list((work / "crm" / "customers").glob("*.parquet")))
    return {**result, "parts": parts, "at_a_time": min(ParallelConfig().workers, parts)}


def _load_timed(work: Path):
    from features.io import load_crm

    crm = load_crm(work / "single")
    return crm, time.perf_counter(), time.process_time()


def _timed(result: dict, t0: float, c0: float) -> dict:
    return {**result, "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def stage_rfm_ours(work: Path) -> dict:
    import pandas as pd

    from features.config import FeatureConfig
    from features.events import SortedEvents
    from features.families import FeatureSink
    from features.families.rfm import add_rfm

    crm, t0, c0 = _load_timed(work)
    index = pd.Index(crm.customers["customer_id"])
    orders = SortedEvents.from_frame(crm.orders, index, "order_ts", ["amount", "discount"])
    tenure = (pd.Timestamp(CUTOFF) - crm.customers["signup_date"]).dt.days.to_numpy(float)
    sink = FeatureSink()
    add_rfm(sink, orders.before(pd.Timestamp(CUTOFF)), tenure, FeatureConfig())
    return _timed({"rows": len(index), "features": len(sink.specs)}, t0, c0)


def stage_rfm_pandas(work: Path) -> dict:
    """The obvious alternative: filter and groupby per window with pandas."""
    import pandas as pd

    crm, t0, c0 = _load_timed(work)
    cutoff = pd.Timestamp(CUTOFF)
    orders = crm.orders[crm.orders["order_ts"] < cutoff]
    frame = pd.DataFrame(index=crm.customers["customer_id"])
    g = orders.groupby("customer_id")
    frame["recency_days"] = (cutoff - g["order_ts"].max()).dt.total_seconds() / 86400
    first = (cutoff - g["order_ts"].min()).dt.total_seconds() / 86400
    frame["orders_lifetime"] = g.size()
    frame["spend_lifetime"] = g["amount"].sum()
    for w in (30, 90, 365):
        recent = orders[orders["order_ts"] >= cutoff - pd.Timedelta(days=w)].groupby("customer_id")
        frame[f"orders_{w}d"] = recent.size()
        frame[f"spend_{w}d"] = recent["amount"].sum()
    frame["interpurchase_days"] = (first - frame["recency_days"]) / (frame["orders_lifetime"] - 1)
    frame = frame.fillna({c: 0 for c in frame.columns if c.startswith(("orders", "spend"))})
    return _timed({"rows": len(frame), "features": frame.shape[1]}, t0, c0)


def _validate(work: Path, workers: int) -> dict:
    """`churn data validate` on the part files: every part checked against the contract."""
    from features.config import FeatureConfig
    from features.parallel import part_pool
    from features.stream import scan_source

    t0 = time.perf_counter()
    with part_pool(workers) as pool:
        scan = scan_source(work / "crm", [], FeatureConfig(), pool=pool)
    return {"seconds": time.perf_counter() - t0, "rows": sum(scan.rows.values()),
            "parts": len(scan.parts), "at_a_time": min(pool.workers, len(scan.parts))}


def stage_validate_one(work: Path) -> dict:
    return _validate(work, 1)


def stage_validate_workers(work: Path) -> dict:
    """What `churn data validate` does since session 14: the build's worker processes."""
    from features.parallel import ParallelConfig

    return _validate(work, ParallelConfig().workers)


# stage: (function, takes --customers, label in the table)
STAGES = {
    "generate_memory": (stage_generate_memory, True, "generate, in memory: one file per table"),
    "generate_streamed": (stage_generate_streamed, True, "generate, streamed:"),
    "features_memory": (stage_features_memory, False, "features at 1 cutoff, in memory"),
    "features_streamed": (stage_features_streamed, False, "features at 1 cutoff, streamed"),
    "rfm_ours": (stage_rfm_ours, False, "RFM family alone, ours"),
    "rfm_pandas": (stage_rfm_pandas, False, "RFM family alone, pandas groupby"),
    "validate_one": (stage_validate_one, False, "validate the part files, one process"),
    "validate_workers": (stage_validate_workers, False, "validate the part files, workers"),
}


def _run(stage: str, work: Path, customers: int) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--out", str(work), "--customers",
           str(customers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true",
           "CHURN_PROGRESS": "0"}
    with tree_peak() as sampled:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode:
        sys.stderr.write(result.stderr[-4000:])
        return {"failed": (result.stderr.strip().splitlines() or ["?"])[-1]}
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["tree_peak_mb"], out["tree_pss_mb"] = sampled.peak_mb, sampled.pss_peak_mb
    return out


def _peak(stage: str, r: dict) -> str:
    if stage.startswith("rfm"):
        return "-"  # the stage's peak is that of reading the tables
    if stage in ("features_streamed", "validate_workers"):
        return (f"{r['tree_peak_mb'] / 1024:.2f} GB summed (PSS {r['tree_pss_mb'] / 1024:.2f} GB; "
                f"main {r['peak_mb'] / 1024:.2f} GB)")
    return f"{r['peak_mb'] / 1024:.2f} GB"


def _detail(stage: str, r: dict) -> str:
    if stage == "features_memory":
        return (f" (read + build + write: {r['read_validate_s']:.1f} + {r['build_s']:.1f} + "
                f"{r['write_s']:.1f} s; "
                f"peak before the write {r['peak_before_write_mb'] / 1024:.2f} GB)")
    if stage == "features_streamed":
        return (f" (`build_to_parquet`: {r['parts']} part{'s' if r['parts'] > 1 else ''}, "
                f"{r['at_a_time']} at a time)")
    if stage.startswith("validate"):
        return f" ({r['parts']} parts, {r['at_a_time']} at a time)"
    if stage == "generate_streamed":
        return f" {r['parts']} part file{'s' if r['parts'] > 1 else ''} per table"
    return ""


def _table(rows: list[tuple[int, str, dict]]) -> None:
    print("\n| customers | stage | wall | CPU | peak memory | rows | features |")
    print("|---|---|---|---|---|---|---|")
    for n, stage, r in rows:
        label = STAGES[stage][2]
        if "failed" in r:
            print(f"| {n:,} | {label} | failed: {r['failed'][:100]} | | | | |")
            continue
        digits = 2 if stage.startswith("rfm") else 1
        print(f"| {n:,} | {label}{_detail(stage, r)} | {r['seconds']:.{digits}f} s | "
              f"{r['cpu_s']:.{digits}f} s | "
              f"{_peak(stage, r)} | {r['rows']:,} | {r.get('features', '-')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 customers only (a check that every stage runs)")
    parser.add_argument("--stage", choices=sorted(STAGES))
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    if args.stage:
        fn, sized, _ = STAGES[args.stage]
        result = fn(args.out, args.customers[0]) if sized else fn(args.out)
        result["peak_mb"] = peak_mb()
        if "cpu_s" not in result:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build's workers
            result["cpu_s"] = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime
        print(json.dumps(result))
        return
    rows = []
    for n in [20_000] if args.quick else args.customers:
        work = (args.out / f"crm-{n}").resolve()
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        results = {}
        for stage in STAGES:
            results[stage] = r = _run(stage, work, n)
            print(f"{n:>11,} {stage:<18} {json.dumps(r)}", flush=True)
            rows.append((n, stage, r))
            if "failed" in r and stage.startswith("generate"):
                break
        gen = [results.get(s, {}).get("rows") for s in ("generate_memory", "generate_streamed")]
        if None not in gen and gen[0] != gen[1]:
            print(f"warning: the two layouts hold different rows: {gen[0]:,} vs {gen[1]:,}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{MONTHS} months of history, cutoff {CUTOFF}, each stage in its own process; rows: "
          "customers + events written, feature rows, or customers (RFM)")
    _table(rows)


if __name__ == "__main__":
    main()

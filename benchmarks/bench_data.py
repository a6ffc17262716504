"""Speed and peak memory of the sample generator and the feature build.

Each stage runs in a fresh subprocess so its peak resident memory is its own. The feature build is
compared, in the same run and on the same data, with the obvious alternative: pandas ``groupby``
per window, for the RFM family (the one both can compute).

    python benchmarks/bench_data.py --customers 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from memory import peak_mb

CUTOFF = "2025-10-01"


def stage_generate(customers: int, out: Path) -> dict:
    from features.sample import SampleSpec, generate, write_sample

    t0 = time.perf_counter()
    counts = write_sample(generate(SampleSpec(customers=customers, months=24, seed=1)), out)
    events = sum(v for k, v in counts.items() if k not in ("customers",) and not k.startswith("_"))
    return {"seconds": time.perf_counter() - t0, "events": events}


def stage_features(out: Path) -> dict:
    import pandas as pd

    from features.build import build_feature_set
    from features.config import FeatureConfig, LabelConfig
    from features.io import load_crm

    t0 = time.perf_counter()
    crm = load_crm(out)
    t1 = time.perf_counter()
    fs = build_feature_set(crm, [pd.Timestamp(CUTOFF)], FeatureConfig(), LabelConfig())
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "read_validate_s": t1 - t0, "build_s": t2 - t1,
            "rows": len(fs.frame), "features": len(fs.specs)}


def stage_rfm_ours(out: Path) -> dict:
    import pandas as pd

    from features.config import FeatureConfig
    from features.events import SortedEvents
    from features.families import FeatureSink
    from features.families.rfm import add_rfm
    from features.io import load_crm

    crm = load_crm(out)
    t0 = time.perf_counter()
    index = pd.Index(crm.customers["customer_id"])
    orders = SortedEvents.from_frame(crm.orders, index, "order_ts", ["amount", "discount"])
    tenure = (pd.Timestamp(CUTOFF) - crm.customers["signup_date"]).dt.days.to_numpy(float)
    sink = FeatureSink()
    add_rfm(sink, orders.before(pd.Timestamp(CUTOFF)), tenure, FeatureConfig())
    return {"seconds": time.perf_counter() - t0, "features": len(sink.specs)}


def stage_rfm_pandas(out: Path) -> dict:
    """The obvious alternative: filter and groupby per window with pandas."""
    import pandas as pd

    from features.io import load_crm

    crm = load_crm(out)
    t0 = time.perf_counter()
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
    return {"seconds": time.perf_counter() - t0, "features": frame.shape[1]}


STAGES = {"generate": stage_generate, "features": stage_features, "rfm_ours": stage_rfm_ours,
          "rfm_pandas": stage_rfm_pandas}


def _run(stage: str, out: Path, customers: int) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--out", str(out), "--customers",
           str(customers)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--stage", choices=sorted(STAGES))
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    if args.stage:
        kwargs = {"out": args.out}
        if args.stage == "generate":
            kwargs["customers"] = args.customers[0]
        result = STAGES[args.stage](**kwargs)
        result["peak_mb"] = peak_mb()
        print(json.dumps(result))
        return
    rows = []
    for n in args.customers:
        out = args.out / f"crm-{n}"
        gen = _run("generate", out, n)
        feats = _run("features", out, n)
        ours = _run("rfm_ours", out, n)
        naive = _run("rfm_pandas", out, n)
        rows.append((n, gen, feats, ours, naive))
        print(f"\n{n:,} customers, 24 months, {gen['events']:,} events")
        print(f"  generate            {gen['seconds']:7.1f} s   peak {gen['peak_mb']:7.0f} MB")
        print(f"  features (1 cutoff) {feats['seconds']:7.1f} s   peak {feats['peak_mb']:7.0f} MB   "
              f"(read+validate {feats['read_validate_s']:.1f} s, build {feats['build_s']:.1f} s; "
              f"{feats['rows']:,} rows x {feats['features']} features)")
        print(f"  RFM family: ours {ours['seconds']:.2f} s ({ours['features']} features) vs pandas "
              f"groupby {naive['seconds']:.2f} s ({naive['features']} features)")
    print("\n| customers | events | generate | gen. peak | features (read+validate+build) | feat. peak "
          "| RFM ours | RFM pandas groupby |")
    print("|---|---|---|---|---|---|---|---|")
    for n, gen, feats, ours, naive in rows:
        print(f"| {n:,} | {gen['events'] / 1e6:.1f} M | {gen['seconds']:.0f} s | "
              f"{gen['peak_mb'] / 1024:.1f} GB | {feats['seconds']:.0f} s "
              f"({feats['read_validate_s']:.0f} + {feats['build_s']:.0f}) | "
              f"{feats['peak_mb'] / 1024:.1f} GB | {ours['seconds']:.1f} s | {naive['seconds']:.1f} s |")


if __name__ == "__main__":
    main()

"""Campaigns that can be read, and policies judged before they are sent: coverage over seeds.

On a generated sample (``--customers``, seed 11), the customers still there at its end with their
true churn probability and true offer effects (``_truth/``, see ``tests/scoring/sample_truth.py``):

- off-policy evaluation: logged campaigns drawn with a non-uniform logging policy (valuable
  customers more often sent an offer), outcomes from the truth; how often the IPS and DR 95%
  intervals hold each policy's true value and its true gain over sending nothing, their widths,
  and the naive estimate that ignores the propensities;
- readout: campaigns planned with power-sized hold-outs and test slices, outcomes from the truth;
  how often each offer's 95% interval holds its true mean cut on the customers it targeted.

    python benchmarks/bench_campaigns.py --customers 20000 --seeds 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' truth-world helper

from features.sample import SampleSpec, generate, write_sample  # noqa: E402
from scoring.offers.catalogue import load_catalogue  # noqa: E402
from scoring.offers.design import (  # noqa: E402
    PROVEN,
    UNKNOWN,
    DesignSettings,
    assignment_frame,
    design_campaign,
)
from scoring.offers.ope import judge_policies  # noqa: E402
from scoring.offers.policy import eligible_block, options  # noqa: E402
from scoring.offers.readout import read_campaign  # noqa: E402
from tests.scoring.sample_truth import draw_log, ope_world, truth_world  # noqa: E402


def ope_coverage(world, seeds: int) -> None:
    held, width, naive = {}, {}, 0
    truth = world.truth
    for seed in range(seeds):
        logged = draw_log(world, seed)
        for _, r in judge_policies(logged, world.policies).iterrows():
            keys = [((r["policy"], r["estimator"]), truth[r["policy"]], r["low"], r["high"])]
            if r["policy"] != "no offer":
                keys.append((("gain " + r["policy"], r["estimator"]),
                             truth[r["policy"]] - truth["no offer"], r["gain_low"],
                             r["gain_high"]))
            for key, true, low, high in keys:
                held[key] = held.get(key, 0) + int(low <= true <= high)
                width.setdefault(key, []).append(high - low)
        for name in ("no offer", "risk-only"):
            r = logged.reward[logged.action == world.policies[name]]
            naive += abs(r.mean() - truth[name]) <= 1.96 * r.std(ddof=1) / np.sqrt(len(r))
    print("true net value per customer: " + ", ".join(f"{k} {v:.2f}" for k, v in truth.items()))
    print("\n| estimate | estimator | 95% interval holds the truth | mean width |")
    print("|---|---|---|---|")
    for (name, est), v in held.items():
        print(f"| {name} | {est} | {v}/{seeds} ({v / seeds:.0%}) | {np.mean(width[(name, est)]):.2f} |")
    print(f"| naive (no propensities), no offer and risk-only | - | {naive}/{2 * seeds} "
          f"({naive / 2 / seeds:.0%}) | - |")


def readout_coverage(w, catalogue, seeds: int) -> None:
    c = w.customers()
    opts = options(c, {o: w.effects[:, j] - 0.2 * w.base for j, o in enumerate(catalogue.ids)},
                   catalogue)
    ok = eligible_block(c, catalogue.arrays)
    status = {"discount_10": PROVEN, "service_call": UNKNOWN, "loyalty_bonus": UNKNOWN}
    hit, total, sizes = {}, {}, {}
    for seed in range(seeds):
        d = design_campaign(opts, ok, w.base, catalogue, 0.3 * len(w.base) * 10.0, status,
                            DesignSettings(test_share=0.2), seed)
        frame = assignment_frame(d, w.ids, catalogue, opts, w.value, "c", "2026-01-01")
        y = w.outcome(np.random.default_rng(1000 + seed), np.where(d.treated, d.offer, -1))
        pos = pd.Index(w.ids).get_indexer(frame["customer_id"])
        for oid, r in read_campaign(frame.assign(outcome=y[pos]), catalogue) \
                .set_index("offer_id").iterrows():
            j = catalogue.ids.index(oid)
            targeted = d.offer == j
            if (targeted & ~d.treated).sum() < 20:
                continue
            true = -w.effects[targeted, j].mean()
            hit[oid] = hit.get(oid, 0) + int(r["ci_low"] <= true <= r["ci_high"])
            total[oid] = total.get(oid, 0) + 1
            sizes.setdefault(oid, []).append((r["treated"], r["hold_out"], r["ci_high"] - r["ci_low"]))
    print("\n| offer (arm) | sent / held out | 95% interval holds the true cut | mean width |")
    print("|---|---|---|---|")
    for oid in total:
        t, h, width = np.mean(sizes[oid], axis=0)
        arm = "policy" if status[oid] == PROVEN else "test slice"
        print(f"| {oid} ({arm}) | {t:.0f} / {h:.0f} | {hit[oid]}/{total[oid]} "
              f"({hit[oid] / total[oid]:.0%}) | {width:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    t0 = time.perf_counter()
    catalogue = load_catalogue()
    with tempfile.TemporaryDirectory() as tmp:
        write_sample(generate(SampleSpec(customers=args.customers, months=24, seed=11)), tmp)
        w = truth_world(Path(tmp), catalogue)
    print(f"{len(w.base):,} customers at the end of a {args.customers:,}-customer sample; "
          f"{args.seeds} seeds")
    ope_coverage(ope_world(w, catalogue), args.seeds)
    readout_coverage(w, catalogue, args.seeds)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

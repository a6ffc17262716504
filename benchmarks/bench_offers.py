"""Does the offer policy pay, and does it beat the uplift libraries? (``make bench-offers``)

On several generated samples (one per seed), train the churn model and the effect models on the
history, score the active base at the end of the data, and spend the same budget every way:

  - no offer; random customers and risk-only (highest churn probability first), both with one
    fixed offer;
  - each peer (``offers_peers``): causalml's S, T, X, R and DR learners on LightGBM, its uplift
    forest, and two plain LightGBM classifiers (two-model), fitted per offer on the same past
    campaigns, their predicted effects fed to the same budgeted allocation as the project's;
  - this policy: the project's learnt effects (``training.uplift``) x customer value - cost;
  - the yardstick, not a method: the same allocation fed a LightGBM fitted on the *true* effects
    (``_truth``, cross-fitted), i.e. about the most a model that sees only the features reaches;
  - the oracle: the allocation fed every customer's true effect.

Each plan is judged on the truth: customers retained = sum of the true cuts in churn probability
of the customers sent an offer; net value = sum(true cut x customer value - cost). Customers who
already left silently (not in the truth) cannot be kept: an offer sent to them is pure cost.
Figures are the mean and standard deviation over the seeds; the verdict compares means.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from offers_data import Arena, arena
from offers_peers import PEERS, peer_effects

from scoring.offers.campaign import allocate
from scoring.offers.catalogue import Catalogue, load_catalogue
from scoring.offers.policy import NO_OFFER, options
from scoring.offers.uplift import offer_effects
from training.uplift import fit_uplift

FIXED_OFFER = "discount_10"
OURS, YARDSTICK, ORACLE = "this policy (learnt effects)", \
    "yardstick: LightGBM fitted on the true effects", "oracle (true effects)"
GOAL_PEER, GOAL_YARDSTICK = 1.2, 0.8


def judge(choice: np.ndarray, truth: np.ndarray, value: np.ndarray, costs: np.ndarray) -> dict:
    sent = np.flatnonzero(choice != NO_OFFER)
    cut = -truth[sent, choice[sent]]
    return {"sent": len(sent), "spend": float(costs[choice[sent]].sum()),
            "kept": float(cut.sum()),
            "net_value": float((cut * value[sent]).sum() - costs[choice[sent]].sum())}


def fixed_offer_plan(order: np.ndarray, j: int, cost: float, budget: float, n: int) -> np.ndarray:
    choice = np.full(n, NO_OFFER)
    take = order[: int(budget // cost)] if cost > 0 else order
    choice[take] = j
    return choice


def features_ceiling(x: np.ndarray, truth: np.ndarray, ids: list[str]) -> dict[str, np.ndarray]:
    """Not a method (it trains on ``_truth``): how much of the oracle any model that sees only the
    features could reach. A LightGBM regression of each offer's true effect on the features,
    cross-fitted (each customer's effect predicted by a model that did not see them)."""
    import lightgbm as lgb

    folds = np.arange(len(x)) % 3
    out = {}
    for k, offer in enumerate(ids):
        pred = np.zeros(len(x))
        for f in range(3):
            model = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, verbose=-1,
                                      random_state=0, n_jobs=1)
            model.fit(x[folds != f], truth[folds != f, k])
            pred[folds == f] = model.predict(x[folds == f])
        out[offer] = pred
    return out


def run_seed(a: Arena, catalogue: Catalogue, budget_share: float, peers: list[str]
             ) -> tuple[dict[str, dict], dict[str, float], str]:
    """Every targeting's result on one arena, the seconds each took, and notes."""
    ids, costs, n = catalogue.ids, catalogue.costs, len(a.x)
    j_fixed = ids.index(FIXED_OFFER)
    budget = budget_share * n * costs[j_fixed]

    def plan(effects: dict[str, np.ndarray]) -> dict:
        return judge(allocate(options(a.customers, effects, catalogue), catalogue, budget).offer,
                     a.truth, a.value, costs)

    rows, secs = {"no offer": judge(np.full(n, NO_OFFER), a.truth, a.value, costs)}, {}
    rows[f"random ({FIXED_OFFER})"] = judge(fixed_offer_plan(
        np.random.default_rng(a.seed).permutation(n), j_fixed, costs[j_fixed], budget, n),
        a.truth, a.value, costs)
    rows[f"risk-only ({FIXED_OFFER})"] = judge(fixed_offer_plan(
        np.argsort(-a.p, kind="stable"), j_fixed, costs[j_fixed], budget, n), a.truth, a.value,
        costs)
    for name in peers:
        t0 = time.perf_counter()
        rows[name] = plan(peer_effects(name, a.data.frame, a.data.x, a.x, ids, a.seed))
        secs[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = fit_uplift(a.data, a.scorer, catalogue)
    rows[OURS] = plan(offer_effects(fit.models, a.x, a.p, catalogue))
    secs[OURS] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows[YARDSTICK] = plan(features_ceiling(a.x, a.truth, ids))
    secs[YARDSTICK] = time.perf_counter() - t0
    rows[ORACLE] = plan({o: a.truth[:, k] for k, o in enumerate(ids)})
    note = (f"seed {a.seed}: {n:,} active at {a.data_end}, {len(a.data.frame):,} past-campaign "
            f"rows, budget {budget:,.0f}; this policy: " + "; ".join(
                f"{k} {m.source}" + (f" x{m.scale:.2f}" if m.source == "learnt" else "")
                for k, m in fit.models.models.items()))
    return rows, secs, note


def _cell(values: list[float], fmt: str) -> str:
    m = np.mean(values)
    return f"{m:{fmt}} ± {np.std(values, ddof=1):{fmt}}" if len(values) > 1 else f"{m:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23])
    parser.add_argument("--budget-share", type=float, default=0.05,
                        help="budget = this share of the base x the fixed offer's cost")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller run: 40,000 customers, seeds 21-23")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep each seed's sample, churn model and campaigns here (pickle)")
    parser.add_argument("--peers", nargs="*", default=None,
                        help="only the peers whose name contains one of these words")
    args = parser.parse_args()
    if args.quick:
        args.customers = 40_000
    logging.basicConfig(level=logging.WARNING)
    t_start = time.perf_counter()
    catalogue = load_catalogue()
    peers = [p for p in PEERS if args.peers is None or any(w in p for w in args.peers)]
    results: dict[str, list[dict]] = {}
    seconds: dict[str, list[float]] = {"sample, churn model, campaigns": []}
    for seed in args.seeds:
        t0 = time.perf_counter()
        a = arena(args.customers, seed, catalogue, args.cache)
        seconds["sample, churn model, campaigns"].append(time.perf_counter() - t0)
        rows, secs, note = run_seed(a, catalogue, args.budget_share, peers)
        for k, v in rows.items():
            results.setdefault(k, []).append(v)
        for k, v in secs.items():
            seconds.setdefault(k, []).append(v)
        print(note, flush=True)
        print("  net value: " + "; ".join(f"{k.split(' (')[0]} {v['net_value']:,.0f}"
                                          for k, v in rows.items()), flush=True)

    print(f"\n{args.customers:,} customers per sample, seeds {', '.join(map(str, args.seeds))}; "
          f"the same budget ({args.budget_share:.0%} of the active base x {FIXED_OFFER}) for "
          f"every row; mean ± standard deviation over the seeds\n")
    print("| targeting | offers sent | customers retained (true) | net value (true) |")
    print("|---|---|---|---|")
    for name, rs in results.items():
        print(f"| {name} | {np.mean([r['sent'] for r in rs]):,.0f} | "
              f"{_cell([r['kept'] for r in rs], '.1f')} | "
              f"{_cell([r['net_value'] for r in rs], ',.0f')} |")
    net = {k: np.array([r["net_value"] for r in v]) for k, v in results.items()}
    ours = net[OURS].mean()
    if peers:
        best = max(peers, key=lambda k: net[k].mean())
        b = net[best].mean()
        ratio = f"{ours / b:.2f}x" if b > 0 else f"n/a (the best peer's net value is {b:,.0f})"
        met = (ours >= GOAL_PEER * b) if b > 0 else ours > 0
        print(f"\ngoal 1 (>= {GOAL_PEER}x the best peer's true net value): best peer {best} "
              f"({b:,.0f}); this policy {ours:,.0f} = {ratio}: {'MET' if met else 'NOT MET'}; "
              f"per seed: " + ", ".join(f"{o:,.0f} vs {p:,.0f}"
                                        for o, p in zip(net[OURS], net[best], strict=True)))
    y = net[YARDSTICK].mean()
    print(f"goal 2 (>= {GOAL_YARDSTICK}x the yardstick's): yardstick {y:,.0f}; this policy = "
          f"{ours / y:.2f}x: {'MET' if ours >= GOAL_YARDSTICK * y else 'NOT MET'}; oracle "
          f"{net[ORACLE].mean():,.0f} (this policy {ours / net[ORACLE].mean():.0%} of it, the "
          f"yardstick {y / net[ORACLE].mean():.0%})")
    print("\nseconds per seed (mean): " + "; ".join(f"{k.split(' (')[0]} {np.mean(v):.0f}"
                                                    for k, v in seconds.items()))
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()

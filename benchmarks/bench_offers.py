"""Does the offer policy pay? (``make bench-offers``)

On a generated sample: train the churn model and the uplift models on the history, score the
active base at the end of the data, and spend the same budget four ways:

  (a) this policy: learnt effects x customer value - cost, allocated within the budget;
  (b) risk-only: highest churn probability first, one fixed offer;
  (c) random: random customers, the same fixed offer;
  (d) oracle: knows every customer's true effect (``_truth/offer_effects``);
  (e) a yardstick, not a method: the true effects learnt from the features by a cross-fitted
      regression on ``_truth``, i.e. about the most a model that sees only the features reaches;
  (f) another yardstick: this policy's learner with the past campaigns judged on the hidden true
      churn (from ``_truth``, to the month) instead of the observable outcome, i.e. what a perfect
      campaign outcome would give this learner.

Each plan is judged on the truth: customers kept = sum of true cuts in churn probability, net
value = sum(true cut x customer value - cost). Customers who already left silently (not in the
truth) cannot be kept: an offer sent to them is pure cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.io import load_crm
from features.sample import SampleSpec, generate, write_sample
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import load_catalogue
from scoring.offers.policy import NO_OFFER, Customers, options
from scoring.offers.uplift import offer_effects
from scoring.offers.value import ValueConfig, customer_value
from training.config import TrainConfig
from training.dataset import from_feature_set
from training.model import fit_churn_model
from training.uplift import campaign_data, fit_uplift

CUTOFFS = ("2024-07-01", "2024-10-01", "2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")
FIXED_OFFER = "discount_10"


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
                                      random_state=0)
            model.fit(x[folds != f], truth[folds != f, k])
            pred[folds == f] = model.predict(x[folds == f])
        out[offer] = pred
    return out


def true_churn_outcome(frame: pd.DataFrame, truth_dir: Path, customers: pd.DataFrame,
                       horizon_days: int) -> np.ndarray:
    """1 when the customer truly left within the horizon after the campaign: contract customers
    by their cancel date; others by the last month they appear in ``_truth/churn_probability``
    (the month they left, if before the data's last month; taken as its 15th)."""
    cp = pd.read_parquet(truth_dir / "churn_probability.parquet")
    last = cp.groupby("customer_id")["month"].max()
    left = (pd.to_datetime(last.where(last < cp["month"].max())) + pd.Timedelta(days=15))
    t = frame["campaign"].to_numpy("datetime64[ns]")
    h = np.timedelta64(horizon_days, "D")
    by_id = customers.set_index("customer_id")
    when = np.where(by_id["has_contract"].reindex(frame["customer_id"]).to_numpy(bool),
                    by_id["cancel_date"].reindex(frame["customer_id"]).to_numpy("datetime64[ns]"),
                    left.reindex(frame["customer_id"]).to_numpy("datetime64[ns]"))
    return ((when > t) & (when <= t + h)).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--budget-share", type=float, default=0.05,
                        help="budget = this share of the base x the fixed offer's cost")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    catalogue = load_catalogue()
    features, labels, config = FeatureConfig(), LabelConfig(), TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        write_sample(generate(SampleSpec(customers=args.customers, months=24, seed=args.seed)),
                     tmp)
        crm = load_crm(tmp)
        effects_truth = pd.read_parquet(Path(tmp) / "_truth" / "offer_effects.parquet")
        scorer, _ = fit_churn_model(from_feature_set(
            build_feature_set(crm, [pd.Timestamp(c) for c in CUTOFFS], features, labels), config),
            config)
        data = campaign_data(crm, scorer, features, labels, catalogue.uplift)
        true_data = dataclasses.replace(data, frame=data.frame.assign(outcome=true_churn_outcome(
            data.frame, Path(tmp) / "_truth", crm.customers, labels.horizon_days)))
    fit = fit_uplift(data, scorer, catalogue)
    uplift, metrics = fit.models, fit.metrics
    perfect = fit_uplift(true_data, scorer, catalogue).models
    base = build_feature_set(crm, [crm.data_end.normalize() + pd.Timedelta(days=1)], features,
                             labels).frame
    x = scorer.matrix(base)
    p = scorer.predict(x)
    vcfg = ValueConfig()
    value = customer_value(base[f"orders_{vcfg.window_days}d"],
                           base[f"avg_order_value_{vcfg.window_days}d"], vcfg)
    customers = Customers(p, value, base["days_since_last_offer"].to_numpy(float),
                          base["segment"].to_numpy(), base["plan"].to_numpy(),
                          base["has_contract"].to_numpy())
    ids = catalogue.ids
    truth = effects_truth.pivot(index="customer_id", columns="offer_id", values="effect") \
        .reindex(index=base["customer_id"], columns=ids).fillna(0.0).to_numpy()
    costs = catalogue.costs
    j_fixed = ids.index(FIXED_OFFER)
    budget = args.budget_share * len(base) * costs[j_fixed]
    n = len(base)

    effects = offer_effects(uplift, x, p, catalogue)
    ours = allocate(options(customers, effects, catalogue), catalogue, budget)
    risk = fixed_offer_plan(np.argsort(-p, kind="stable"), j_fixed, costs[j_fixed], budget, n)
    rng = np.random.default_rng(0)
    rand = fixed_offer_plan(rng.permutation(n), j_fixed, costs[j_fixed], budget, n)
    oracle = allocate(options(customers, {o: truth[:, k] for k, o in enumerate(ids)}, catalogue),
                      catalogue, budget)
    ceiling = allocate(options(customers, features_ceiling(x, truth, ids), catalogue), catalogue,
                       budget)
    perfect_plan = allocate(options(customers, offer_effects(perfect, x, p, catalogue), catalogue),
                            catalogue, budget)
    rows = {"this policy (learnt uplift)": judge(ours.offer, truth, value, costs),
            f"risk-only ({FIXED_OFFER})": judge(risk, truth, value, costs),
            f"random ({FIXED_OFFER})": judge(rand, truth, value, costs),
            "oracle (true effects)": judge(oracle.offer, truth, value, costs),
            "yardstick: true effects learnt from the features": judge(ceiling.offer, truth, value,
                                                                     costs),
            "yardstick: this learner, campaigns judged on the true churn": judge(
                perfect_plan.offer, truth, value, costs)}
    print(f"{args.customers:,} customers; {n:,} active at {crm.data_end.date()}; budget "
          f"{budget:,.0f} ({args.budget_share:.0%} of the base x {FIXED_OFFER} at "
          f"{costs[j_fixed]:g})")
    print("uplift models: " + "; ".join(f"{k}: {m.source} ({m.note})"
                                        for k, m in uplift.models.items()))
    print("Qini, each campaign predicted by the others: " + ", ".join(f"{k.split('.')[1]} {v:.4f}"
                                                  for k, v in metrics.items() if k.endswith("qini")))
    print("\n| targeting | offers sent | spend | customers kept (true) | net value (true) |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['sent']:,} | {r['spend']:,.0f} | {r['kept']:.1f} | "
              f"{r['net_value']:,.0f} |")
    a, b, d = (rows["this policy (learnt uplift)"]["net_value"],
               rows[f"risk-only ({FIXED_OFFER})"]["net_value"],
               rows["oracle (true effects)"]["net_value"])
    vs_risk = f"{a / b:.2f}x" if b > 0 else f"risk-only loses money ({b:,.0f}); ours {a:,.0f}"
    e = rows["yardstick: true effects learnt from the features"]["net_value"]
    print(f"\nthis policy vs risk-only: {vs_risk}; share of the oracle: {a / d:.0%}; the "
          f"yardstick reaches {e / d:.0%} of the oracle")
    f = rows["yardstick: this learner, campaigns judged on the true churn"]["net_value"]
    print(f"this learner with campaigns judged on the true churn reaches {f / d:.0%}")
    print(f"offers chosen by this policy: {ours.counts}; with the true churn: "
          f"{perfect_plan.counts}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

"""``churn demo``: the whole pipeline on a generated sample, with a readable summary."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from churn.settings import Settings
from features.build import build_feature_set, write_feature_set
from features.io import load_crm
from features.sample import SampleSpec, generate, write_sample
from features.store import materialize
from jobs.batch import BatchConfig, run_batch
from scoring.core import ScoringCore
from scoring.model_store import load_scorer, use_tracking
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import load_catalogue
from scoring.offers.policy import NO_OFFER, explain, options
from scoring.offers.uplift import offer_effects
from training.pipeline import train_on_feature_set
from training.registry import promote

log = logging.getLogger(__name__)

DEMO_CUTOFFS = ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")


def run_demo(workdir: Path, customers: int, seed: int, settings: Settings,
             echo: Callable[[str], None]) -> dict:
    """Generate, validate, build features and labels; return what was done (for tests)."""
    workdir = Path(workdir)
    started = time.perf_counter()
    data_dir = workdir / "data"
    echo(f"1. generating a sample CRM: {customers:,} customers, 24 months (seed {seed})")
    counts = write_sample(generate(SampleSpec(customers=customers, months=24, seed=seed)), data_dir)
    for name, rows in counts.items():
        if not name.startswith("_"):
            echo(f"     {name:<11} {rows:>10,} rows")
    echo("2. checking the data contract")
    crm = load_crm(data_dir)
    echo(f"     ok: {len(crm.tables())} tables, data until {crm.data_end.date()}")
    echo(f"3. point-in-time features and {settings.labels.definition} churn labels "
         f"({settings.labels.horizon_days}-day horizon) at {len(DEMO_CUTOFFS)} cutoffs")
    fs = build_feature_set(crm, [pd.Timestamp(c) for c in DEMO_CUTOFFS], settings.features,
                           settings.labels)
    features_path = write_feature_set(fs, workdir / "features.parquet")
    by_cutoff = fs.frame.groupby("cutoff")["label"].agg(["size", "mean"])
    for cutoff, row in by_cutoff.iterrows():
        rate = "not known yet" if pd.isna(row["mean"]) else f"{row['mean']:.1%}"
        echo(f"     {cutoff.date()}  {int(row['size']):>7,} active customers   churn {rate}")
    families = pd.Series([s.family for s in fs.specs]).value_counts()
    echo(f"     {len(fs.specs)} features: " + ", ".join(f"{k} {v}" for k, v in families.items()))
    echo(f"     written to {features_path}")

    echo(f"4. training a calibrated churn model (LightGBM, a logistic regression or a blend, chosen "
         f"by cross-validation); hold-out = the latest cutoff "
         f"({DEMO_CUTOFFS[-1]}), tracked in MLflow at {use_tracking()}")
    result = train_on_feature_set(fs, crm.fingerprint(), settings.features, settings.training,
                                  plots_dir=workdir / "plots", crm=crm)
    echo(f"     {'':<22}{'ROC AUC':>9}{'PR AUC':>9}{'Brier':>8}{'lift@10%':>10}{'capture@10%':>13}")
    family = result.selection.get("model_family", "lightgbm")
    for name, m in [(f"model ({family})", result.metrics), *result.baselines.items()]:
        brier = "-" if m["brier"] != m["brier"] else f"{m['brier']:.3f}"  # NaN: a ranking rule
        echo(f"     {name:<22}{m['roc_auc']:>9.3f}{m['pr_auc']:>9.3f}{brier:>8}"
             f"{m['lift_top10']:>10.2f}{m['capture_top10']:>13.1%}")
    sel = result.selection
    if sel:
        echo(f"     cross-validation ({sel['cv_folds']} {sel['cv_fold_kind']} folds) chose {family}: "
             f"out-of-fold AUC {sel['cv_auc_chosen']:.3f}, LightGBM {sel['cv_auc_lightgbm']:.3f}, "
             f"logistic regression {sel['cv_auc_linear']:.3f}")
    m = result.metrics
    echo(f"     calibration error {m['calibration_error']:.3f}; acting on the top "
         f"{m['best_profit_share']:.0%} by risk would earn {m['best_profit']:,.0f} on the hold-out")
    echo(f"     {result.verdict}")
    echo(f"     registered {result.model_uri} (alias challenger); plots in {workdir / 'plots'}")
    promotion = promote(settings.training.model_name, settings.training.primary_metric,
                        settings.training.promotion_tolerance)
    verb = "is now champion" if promotion.promoted else "stays challenger"
    echo(f"5. promotion gate: version {promotion.challenger_version} {verb} ({promotion.reason})")

    as_of = crm.data_end.normalize() + pd.Timedelta(days=1)
    store = workdir / "online_store.sqlite"
    latest = build_feature_set(crm, [as_of], settings.features, settings.labels,
                               population_only=False)
    n = materialize(latest.frame, latest.feature_names, store)
    echo(f"6. online feature store: {n:,} customers as of {as_of.date()} in {store}")

    base = build_feature_set(crm, [as_of], settings.features, settings.labels).frame
    budget = round(0.05 * len(base) * 10.0)
    loaded = load_scorer(f"models:/{settings.training.model_name}@champion")
    core = ScoringCore(loaded, load_catalogue())
    scored_path = workdir / "scored.parquet"
    summary = run_batch(loaded, core, base, scored_path,
                        BatchConfig(campaign_budget=budget), "demo", str(as_of.date()))
    echo(f"7. nightly batch: {summary.rows_scored:,} active customers scored into {scored_path}; "
         f"campaign budget {budget:,}")
    plans, examples = compare_plans(core, base, budget,
                                    data_dir / "_truth" / "offer_effects.parquet")
    echo(f"     {'plan':<30}{'offers':>8}{'spend':>9}{'expected saved':>16}"
         f"{'true kept':>11}{'true net':>10}")
    for name, row in plans.items():
        echo(f"     {name:<30}{row['sent']:>8,}{row['spend']:>9,.0f}"
             f"{row['expected_saved']:>16,.0f}{row['true_kept']:>11.1f}{row['true_net']:>10,.0f}")
    echo("     (expected = the models' estimates; true = judged on the sample's hidden _truth)")
    if loaded.uplift is not None:
        for offer_id, model in loaded.uplift.models.items():
            echo(f"     {offer_id}: {model.source} effect; {model.note}")
    scored = pd.read_parquet(scored_path).set_index("customer_id")
    for customer, p, why in examples:
        reasons = ", ".join(json.loads(scored.loc[customer, "reasons"])[:2])
        echo(f"     {customer} (churn risk {p:.2f}; {reasons}): {why}")
    if not examples:
        echo("     no customer gets an offer: no offer has an effect the past campaigns vouch for, "
             "so sending any would be expected to lose money")
    example = examples[0][0] if examples else base["customer_id"].iloc[0]
    echo("8. serve it: `make serve`, then")
    echo(f"     curl -s -X POST localhost:3000/score -H \"Authorization: Bearer $(cat "
         f".churn-api-key)\" -H 'content-type: application/json' -d "
         f"'{{\"customers\": [{{\"customer_id\": \"{example}\"}}], \"top_reasons\": 3}}'")
    echo(f"done in {time.perf_counter() - started:.0f} s")
    return {"data": data_dir, "features": features_path, "rows": len(fs.frame),
            "features_count": len(fs.specs), "train": result, "promotion": promotion,
            "store": store, "scored": scored_path, "plans": plans}


def compare_plans(core: ScoringCore, base: pd.DataFrame, budget: float,
                  truth_path: Path) -> tuple[dict[str, dict], list[tuple[str, float, str]]]:
    """This policy vs. risk-only targeting (one fixed offer) for the same budget, and the
    policy's three most valuable decisions (customer, churn probability, why)."""
    x = core.model.scorer.matrix(base)
    p = core.model.scorer.predict(x)
    customers = core.customers(x, p)
    value = customers.value
    opts = options(customers, offer_effects(core.model.uplift, x, p, core.catalogue), core.catalogue)
    ours = allocate(opts, core.catalogue, budget).offer
    fixed = core.catalogue.ids.index("discount_10")
    cost = core.catalogue.offers[fixed].cost
    risk = np.full(len(p), NO_OFFER)
    risk[np.argsort(-p, kind="stable")[: int(budget // cost)]] = fixed
    truth = pd.read_parquet(truth_path).pivot(index="customer_id", columns="offer_id",
                                              values="effect") \
        .reindex(index=base["customer_id"], columns=core.catalogue.ids).fillna(0.0).to_numpy()
    out = {}
    for name, choice in (("this policy (uplift x value)", ours),
                         ("risk-only (discount_10)", risk)):
        sent = np.flatnonzero(choice != NO_OFFER)
        j = choice[sent]
        spend = float(opts.costs[j].sum())
        true_cut = -truth[sent, j]
        out[name] = {"sent": len(sent), "spend": spend,
                     "expected_saved": float((opts.reduction[sent, j] * value[sent]).sum()),
                     "true_kept": float(true_cut.sum()),
                     "true_net": float((true_cut * value[sent]).sum() - spend)}
    sent = np.flatnonzero(ours != NO_OFFER)
    best = sent[np.argsort(-opts.net[sent, ours[sent]], kind="stable")[:3]]
    sources = core.model.uplift.sources() if core.model.uplift else {}
    examples = [(str(base["customer_id"].iloc[i]), float(p[i]),
                 explain(int(i), int(ours[i]), customers, opts, core.catalogue, sources).why)
                for i in best]
    return out, examples

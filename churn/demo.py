"""``churn demo``: the whole pipeline on a generated sample, with a readable summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from churn.settings import Settings
from features.build import build_feature_set, write_feature_set
from features.io import load_crm
from features.sample import SampleSpec, generate, write_sample
from serving.model_store import use_tracking
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

    echo(f"4. training a calibrated LightGBM model; hold-out = the latest cutoff "
         f"({DEMO_CUTOFFS[-1]}), tracked in MLflow at {use_tracking()}")
    result = train_on_feature_set(fs, crm.fingerprint(), settings.features, settings.training,
                                  plots_dir=workdir / "plots")
    echo(f"     {'':<22}{'ROC AUC':>9}{'PR AUC':>9}{'Brier':>8}{'lift@10%':>10}{'capture@10%':>13}")
    for name, m in [("LightGBM (calibrated)", result.metrics), *result.baselines.items()]:
        brier = "-" if m["brier"] != m["brier"] else f"{m['brier']:.3f}"  # NaN: a ranking rule
        echo(f"     {name:<22}{m['roc_auc']:>9.3f}{m['pr_auc']:>9.3f}{brier:>8}"
             f"{m['lift_top10']:>10.2f}{m['capture_top10']:>13.1%}")
    m = result.metrics
    echo(f"     calibration error {m['calibration_error']:.3f}; acting on the top "
         f"{m['best_profit_share']:.0%} by risk would earn {m['best_profit']:,.0f} on the hold-out")
    echo(f"     {result.verdict}")
    echo(f"     registered {result.model_uri} (alias challenger); plots in {workdir / 'plots'}")
    promotion = promote(settings.training.model_name, settings.training.primary_metric,
                        settings.training.promotion_tolerance)
    verb = "is now champion" if promotion.promoted else "stays challenger"
    echo(f"5. promotion gate: version {promotion.challenger_version} {verb} ({promotion.reason})")
    echo(f"done in {time.perf_counter() - started:.0f} s")
    return {"data": data_dir, "features": features_path, "rows": len(fs.frame),
            "features_count": len(fs.specs), "train": result, "promotion": promotion}

"""Training speed: ~500k rows x ~80 features, calibration, baselines, plots and MLflow included.

Compared in the same run with the floor: a bare ``lightgbm.train`` on the same matrix for the same
number of rounds (no early stopping, no calibration, no baselines, no logging).

    python benchmarks/bench_train.py --customers 200000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from memory import peak_mb

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.io import load_crm
from features.sample import SampleSpec, generate, write_sample
from features.spec import CATEGORY
from training.config import TrainConfig
from training.dataset import FIT, from_feature_set
from training.pipeline import train_on_feature_set


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_sample(generate(SampleSpec(customers=args.customers, months=24, seed=3)),
                     tmp / "crm")
        crm = load_crm(tmp / "crm")
        cutoffs = list(pd.date_range("2024-07-01", "2025-09-01", freq="MS"))
        fs = build_feature_set(crm, cutoffs, FeatureConfig(), LabelConfig())
        while len(fs.frame) > args.rows and len(cutoffs) > 2:  # about the asked row count
            cutoffs = cutoffs[1:]
            fs = type(fs)(fs.frame[fs.frame["cutoff"].isin(cutoffs)], fs.specs, fs.label_config)
        os.chdir(tmp)
        t0 = time.perf_counter()
        result = train_on_feature_set(fs, crm.fingerprint(), FeatureConfig(), TrainConfig())
        full = time.perf_counter() - t0
        data = from_feature_set(fs, TrainConfig())
        from mlflow import MlflowClient

        rounds = int(MlflowClient().get_run(result.run_id).data.params["best_rounds"])
        x, y = data.xy(FIT)
        cats = [j for j, k in enumerate(data.kinds) if k == CATEGORY]
        t1 = time.perf_counter()
        lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 2, "seed": 1},
                  lgb.Dataset(x, y, categorical_feature=cats), num_boost_round=rounds)
        bare = time.perf_counter() - t1
    peak = peak_mb() / 1024
    print(f"training set: {len(fs.frame):,} rows x {len(fs.specs)} features "
          f"({len(cutoffs)} cutoffs of {args.customers:,} customers)")
    print(f"churn train pipeline (early stopping, calibration, 2 baselines, plots, MLflow run, "
          f"registered model): {full:.0f} s; {rounds} rounds; hold-out AUC "
          f"{result.metrics['roc_auc']:.3f}")
    print(f"bare lightgbm.train on the fit rows ({len(y):,}) for the same {rounds} rounds: "
          f"{bare:.0f} s")
    print(f"peak memory of the whole benchmark: {peak:.1f} GB")


if __name__ == "__main__":
    main()

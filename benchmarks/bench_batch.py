"""Batch scoring speed and memory (``make bench-batch``).

1M customers end to end (read, score, reasons, offers, budgeted allocation, write) compared in the
same run with raw ``Booster.predict`` on the same feature matrix; the Spark engine on local[2] for
the same job. Each measurement runs in its own process so its peak memory is its own.

The 1M-row feature table is 100k generated customers' features repeated ten times under new ids
(the speed of scoring does not depend on who the customers are).
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

import pandas as pd
from memory import peak_mb

STAGES = ("raw", "local", "local-priors", "local-shap", "local-high-shap", "local-noreasons",
          "spark", "engines")


def _prepare(folder: Path, customers: int, rows: int) -> None:
    from features.build import build_feature_set
    from features.config import FeatureConfig, LabelConfig
    from features.io import load_crm
    from features.sample import SampleSpec, generate, write_sample
    from scoring.offers.catalogue import load_catalogue
    from training.config import TrainConfig
    from training.dataset import from_feature_set
    from training.model import fit_churn_model
    from training.uplift import campaign_data, fit_uplift

    write_sample(generate(SampleSpec(customers=customers, months=24, seed=9)), folder / "crm")
    crm = load_crm(folder / "crm")
    cutoffs = [pd.Timestamp(c) for c in ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")]
    fs = build_feature_set(crm, cutoffs, FeatureConfig(), LabelConfig())
    scorer, _ = fit_churn_model(from_feature_set(fs, TrainConfig()), TrainConfig())
    catalogue = load_catalogue()
    uplift = fit_uplift(campaign_data(crm, scorer, FeatureConfig(), LabelConfig(),
                                      catalogue.uplift), scorer, catalogue).models
    scorer.save(folder / "model" / "scorer")
    uplift.save(folder / "model" / "uplift")
    base = build_feature_set(crm, [pd.Timestamp("2026-01-01")], FeatureConfig(), LabelConfig(),
                             population_only=False).frame.drop(columns=["label"])
    reps = -(-rows // len(base))
    big = pd.concat([base] * reps, ignore_index=True).head(rows)
    big["customer_id"] = [f"B{i:08d}" for i in range(len(big))]
    big.to_parquet(folder / "features.parquet", index=False, row_group_size=50_000)


def _model(folder: Path, method: str = "path"):
    import dataclasses

    from scoring.model_store import LoadedModel
    from scoring.offers.uplift import UpliftModels
    from scoring.scorer import ChurnScorer

    scorer = ChurnScorer.load(folder / "model" / "scorer")
    scorer = dataclasses.replace(scorer, meta={**scorer.meta, "contribution_method": method})
    return LoadedModel(scorer, "bench", "bench", "1", None,
                       UpliftModels.load(folder / "model" / "uplift"))


def agreement(folder: Path, rows: int = 20_000) -> dict:
    """How often the path attribution's reasons match exact TreeSHAP's on the benchmark model."""
    import numpy as np

    from scoring.reasons import top_positive

    scorer = _model(folder).scorer
    x = scorer.matrix(pd.read_parquet(folder / "features.parquet").head(rows))
    path = top_positive(scorer.contributions(x)[:, :-1], 3)
    shap = top_positive(scorer.booster.predict(x, pred_contrib=True)[:, :-1], 3)
    has = shap[:, 0] >= 0
    return {"rows": int(has.sum()),
            "top1_same": float((path[has, 0] == shap[has, 0]).mean()),
            "shap_top1_in_path_top3": float(np.mean([shap[i, 0] in path[i] for i in
                                                     np.flatnonzero(has)])),
            "top3_overlap": float(np.mean([len(set(path[i][path[i] >= 0])
                                               & set(shap[i][shap[i] >= 0]))
                                           / max(1, (shap[i] >= 0).sum())
                                           for i in np.flatnonzero(has)]))}


def engines(folder: Path, rows: int = 100_000) -> dict:
    """Scores (and contributions) for the same matrix by each candidate engine: LightGBM's
    predict and pred_contrib (TreeSHAP), the project's compiled walk (scores + each row's top 3
    contributions) and treelite/tl2cgen's compiled C (scores only; compiled before timing), with
    each one's largest difference from LightGBM's raw score."""
    import numpy as np
    import pyarrow.parquet as pq

    scorer = _model(folder).scorer
    table = pq.ParquetFile(folder / "features.parquet")
    frame = next(table.iter_batches(batch_size=rows)).to_pandas()
    x = scorer.matrix(frame)
    xc = np.ascontiguousarray(x)
    reference = scorer.booster.predict(xc, raw_score=True)
    out = {}

    def measure(name, fn, n=len(x)):
        fn()  # warm: compiled code loaded, caches filled
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[name] = {"rows_per_s": n / wall, "cpu_us_per_row": cpu / n * 1e6}
        return result

    measure("lightgbm predict (scores)", lambda: scorer.booster.predict(xc, raw_score=True))
    small = xc[:10_000]
    measure("lightgbm pred_contrib (TreeSHAP)",
            lambda: scorer.booster.predict(small, pred_contrib=True), len(small))
    raw = measure("compiled walk (scores + top 3 contributions)",
                  lambda: scorer.explainer.explain_top(x, 3)[0])
    out["compiled walk (scores + top 3 contributions)"]["max_diff"] = float(
        np.abs(raw - reference).max())
    try:
        import tl2cgen
        import treelite

        lib = folder / "tl2cgen-model.so"
        if not lib.exists():
            tl2cgen.export_lib(treelite.frontend.from_lightgbm(scorer.booster), toolchain="gcc",
                               libpath=str(lib), params={"parallel_comp": 8}, nthread=1)
        predictor = tl2cgen.Predictor(str(lib))
        matrix = tl2cgen.DMatrix(xc, dtype="float64")
        got = measure("tl2cgen compiled C (scores)",
                      lambda: np.asarray(predictor.predict(matrix, pred_margin=True)).ravel())
        diff = np.abs(got - reference)
        out["tl2cgen compiled C (scores)"].update(max_diff=float(diff.max()),
                                                  rows_off=int((diff > 1e-6).sum()))
    except ImportError as exc:
        out["tl2cgen compiled C (scores)"] = {"error": str(exc)}
    return {"rows": len(x), "engines": out}


def stage(name: str, folder: Path, budget: float) -> dict:
    from jobs.batch import BatchConfig, score_table
    from scoring.core import ScoringCore
    from scoring.offers.catalogue import load_catalogue

    model = _model(folder, "shap" if name.endswith("-shap") else "path")
    if name == "local-priors":  # the catalogue's priors: offers are made and allocated
        import dataclasses

        from scoring.offers.uplift import UpliftModels

        model = dataclasses.replace(model, uplift=UpliftModels.priors_only(load_catalogue(),
                                                                           "bench"))
    if name == "engines":
        return engines(folder)
    t0, cpu0 = time.perf_counter(), time.process_time()
    if name == "raw":
        frame = pd.read_parquet(folder / "features.parquet")
        x = model.scorer.matrix(frame)
        t1 = time.perf_counter()
        model.scorer.booster.predict(x)
        rows = len(frame)
        extra = {"predict_only_s": time.perf_counter() - t1}
    elif name.startswith("local"):
        config = BatchConfig(campaign_budget=budget)
        if name == "local-high-shap":
            config = BatchConfig(campaign_budget=budget, reasons_min_band="high")
        elif name == "local-noreasons":
            config = BatchConfig(campaign_budget=budget, top_reasons=0)
        summary = score_table(model, ScoringCore(model, load_catalogue()),
                              folder / "features.parquet", folder / f"out-{name}.parquet", config)
        rows, extra = summary.rows_in, {"offers": summary.offers}
    else:
        from churn.settings import Settings
        from jobs.batch import BatchConfig as BC
        from jobs.spark_features import spark_session
        from jobs.spark_scoring import spark_score
        from scoring.core import ScoringCore as SC

        spark_session("local[2]")
        t0, cpu0 = time.perf_counter(), time.process_time()  # the session start is not the job's
        summary = spark_score(model, SC(model, load_catalogue()), folder / "out-spark.parquet",
                              BC(campaign_budget=budget), Settings(),
                              features=folder / "features.parquet", spark="local[2]")
        rows, extra = summary.rows_in, {}
    seconds = time.perf_counter() - t0
    # CPU seconds of every thread of this process: a second view that a busy machine distorts
    # less than the wall time (the raw baseline's predict uses every core, as does our walk)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "cpu_s": time.process_time() - cpu0,
            "peak_mb": peak_mb(), **extra}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--data", type=Path,
                        help="keep the prepared data and model in this folder and reuse them on "
                             "the next run (default: a temporary folder)")
    parser.add_argument("--only", nargs="+", choices=STAGES,
                        help="run only these jobs (raw and local are always run)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="run raw and local alternately this many times (the median ratio "
                             "is reported: a shared machine moves single runs)")
    args = parser.parse_args()
    budget = 0.05 * args.rows * 10
    if args.stage:
        print(json.dumps(stage(args.stage, args.folder, budget)))
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        if not (folder / "features.parquet").exists():
            folder.mkdir(parents=True, exist_ok=True)
            _prepare(folder, args.customers, args.rows)

        def run(name: str) -> dict:
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--stage", name, "--folder",
                                  str(folder), "--rows", str(args.rows)],
                                 capture_output=True, text=True, check=True)
            return {**json.loads(out.stdout.strip().splitlines()[-1]),
                    "load": (load, os.getloadavg()[0])}

        pairs = [{name: run(name) for name in ("raw", "local")} for _ in range(args.pairs)]
        results = {}
        for name in STAGES:
            if name in ("raw", "local") or (name == "spark" and args.skip_spark) or (
                    args.only and name not in args.only):
                continue
            results[name] = run(name)
        agree = agreement(folder)
    # the pair with the median wall-time ratio stands for raw and local in the table
    pairs.sort(key=lambda pair: pair["local"]["rows_per_s"] / pair["raw"]["rows_per_s"])
    results.update(pairs[len(pairs) // 2])
    raw, local = results["raw"], results["local"]
    from jobs.batch_output import BatchConfig

    print(f"{args.rows:,} customers, chunk size {BatchConfig().chunk_size:,}, campaign budget "
          f"{budget:,.0f}")
    print("| job | rows/s | time | CPU time | peak memory |\n|---|---|---|---|---|")
    print(f"| raw Booster.predict (read + matrix + predict) | {raw['rows_per_s']:,.0f} | "
          f"{raw['seconds']:.1f} s | {raw['cpu_s']:.1f} s | {raw['peak_mb'] / 1024:.2f} GB |")
    print(f"| churn score, local (scores, path reasons, offers, budget, write) | "
          f"{local['rows_per_s']:,.0f} | {local['seconds']:.1f} s | {local['cpu_s']:.1f} s | "
          f"{local['peak_mb'] / 1024:.2f} GB |")
    for key, label in (("local-priors", "the same with prior offer effects (offers made)"),
                       ("local-shap", "the same with exact TreeSHAP reasons"),
                       ("local-high-shap", "TreeSHAP reasons, --reasons-for high"),
                       ("local-noreasons", "churn score --top-reasons 0")):
        if key not in results:
            continue
        r = results[key]
        print(f"| {label} | {r['rows_per_s']:,.0f} | {r['seconds']:.1f} s | {r['cpu_s']:.1f} s | "
              f"{r['peak_mb'] / 1024:.2f} GB |")
    if "spark" in results:
        s = results["spark"]
        print(f"| churn score --engine spark, local[2] | {s['rows_per_s']:,.0f} | "
              f"{s['seconds']:.1f} s | {s['cpu_s']:.1f} s (driver) | "
              f"{s['peak_mb'] / 1024:.2f} GB (driver) |")
    print(f"\nlocal job / raw predict: {local['rows_per_s'] / raw['rows_per_s']:.2f}x "
          f"(CPU time: raw / local {raw['cpu_s'] / local['cpu_s']:.2f}x) "
          f"(predict alone took {raw['predict_only_s']:.1f} s); offers: {local['offers']}")
    if len(pairs) > 1:
        print(f"\n{len(pairs)} pairs, raw then local each time (load average at each start -> "
              "end), by ratio:\n| raw s (CPU s) | local s (CPU s) | ratio wall | ratio CPU | "
              "local peak | load |\n|---|---|---|---|---|---|")
        for pair in pairs:
            r, lo = pair["raw"], pair["local"]
            print(f"| {r['seconds']:.1f} ({r['cpu_s']:.1f}) | {lo['seconds']:.1f} "
                  f"({lo['cpu_s']:.1f}) | {lo['rows_per_s'] / r['rows_per_s']:.2f}x | "
                  f"{r['cpu_s'] / lo['cpu_s']:.2f}x | {lo['peak_mb'] / 1024:.2f} GB | "
                  f"{r['load'][0]:.1f} -> {lo['load'][1]:.1f} |")
    if "local-noreasons" in results:
        print(f"without reasons: "
              f"{results['local-noreasons']['rows_per_s'] / raw['rows_per_s']:.2f}x")
    if "local-priors" in results:
        print(f"with prior effects: {results['local-priors']['offers']}")
    if "engines" in results:
        e = results["engines"]
        print(f"\nengines on the same {e['rows']:,} rows (2 cores):\n"
              "| engine | rows/s | CPU µs per row | largest difference from LightGBM |\n"
              "|---|---|---|---|")
        for name, r in e["engines"].items():
            if "error" in r:
                print(f"| {name} | not run: {r['error']} | | |")
                continue
            off = f" ({r['rows_off']:,} rows off by > 1e-6)" if "rows_off" in r else ""
            print(f"| {name} | {r['rows_per_s']:,.0f} | {r['cpu_us_per_row']:.1f} | "
                  f"{r.get('max_diff', 0.0):.2g}{off} |")
    print(f"reasons, path attribution vs exact TreeSHAP on {agree['rows']:,} customers: the same "
          f"first reason {agree['top1_same']:.0%}; TreeSHAP's first reason among the path's "
          f"three {agree['shap_top1_in_path_top3']:.0%}; top-3 overlap {agree['top3_overlap']:.0%}")


if __name__ == "__main__":
    main()

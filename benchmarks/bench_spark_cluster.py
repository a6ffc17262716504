"""The same jobs on the local engine, Spark local[2] and a 2-worker Spark standalone cluster.

    python benchmarks/bench_spark_cluster.py [--customers 50000] [--rows 1000000]

Two jobs on the same data: the feature build from raw CRM tables (customers/s) and batch
scoring of a feature table (rows/s: scores, 3 reasons, offers, a campaign budget, the output
written). The cluster is a master and two workers (1 core, 1 GB each) on 127.0.0.1, started with
pyspark's own scripts (tests/spark_cluster.py); its executors' Python cannot import the project,
so the code travels as the driver ships it. Each measurement runs in its own process; the time to
start a Spark session (and, on the cluster, its executors and their checks) is reported apart
from the job's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from memory import peak_mb

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("local", "local[2]", "cluster")
LOOPBACK = (("spark.driver.host", "127.0.0.1"), ("spark.driver.bindAddress", "127.0.0.1"),
            ("spark.executor.memory", "1g"))
CUTOFF = pd.Timestamp("2026-01-01")


class _Phases(logging.Handler):
    """Keeps the Spark scoring job's own split between executors and driver (from its log)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.text = ""

    def emit(self, record):
        if record.name == "jobs.spark_scoring" and "on the executors" in record.getMessage():
            self.text = record.getMessage()


def stage(job: str, engine: str, folder: Path, master: str | None, python: str | None) -> dict:
    from features.config import FeatureConfig, LabelConfig
    from jobs.spark_session import SparkOptions, spark_session

    spark = None
    session_s = 0.0
    if engine != "local":
        spark = (SparkOptions(master="local[2]") if engine == "local[2]"
                 else SparkOptions(master=master, conf=LOOPBACK, python=python))
        t0 = time.perf_counter()
        spark_session(spark)
        session_s = time.perf_counter() - t0
    phases = _Phases()
    logging.getLogger("jobs.spark_scoring").addHandler(phases)
    logging.getLogger("jobs.spark_scoring").setLevel(logging.INFO)
    t0 = time.perf_counter()
    if job == "build":
        if spark is None:
            from features.build import build_feature_set
            from features.io import load_crm

            fs = build_feature_set(load_crm(folder / "crm"), [CUTOFF], FeatureConfig(),
                                   LabelConfig(), population_only=False)
        else:
            from jobs.spark_features import spark_feature_set

            fs = spark_feature_set(folder / "crm", [CUTOFF], FeatureConfig(), LabelConfig(),
                                   population_only=False, spark=spark)
        rows = len(fs.frame)
    else:
        from bench_batch import _model

        from jobs.batch import BatchConfig, score_table
        from scoring.core import ScoringCore
        from scoring.offers.catalogue import load_catalogue

        model = _model(folder)
        core = ScoringCore(model, load_catalogue())
        config = BatchConfig(campaign_budget=0.5 * len(pd.read_parquet(
            folder / "features.parquet", columns=["customer_id"])))
        out = folder / f"out-{engine.replace('[', '').replace(']', '')}.parquet"
        if spark is None:
            summary = score_table(model, core, folder / "features.parquet", out, config)
        else:
            from churn.settings import Settings
            from jobs.spark_scoring import spark_score

            summary = spark_score(model, core, out, config, Settings(),
                                  features=folder / "features.parquet", spark=spark)
        rows = summary.rows_in
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "session_s": session_s, "peak_mb": peak_mb(), "phases": phases.text}


def _run_stage(job: str, engine: str, folder: Path, master: str, python: str) -> dict:
    cmd = [sys.executable, __file__, "--stage", job, "--engine", engine, "--folder", str(folder),
           "--master", master, "--python", python]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}"})
    if out.returncode != 0:
        raise RuntimeError(f"{job} on {engine} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stage", choices=("build", "score"))
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--master")
    parser.add_argument("--python")
    parser.add_argument("--data", type=Path, help="Prepare the data here once and reuse it.")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--jobs", nargs="+", choices=("build", "score"), default=["build", "score"])
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, args.engine, args.folder, args.master,
                               args.python)))
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    sys.path.insert(0, str(ROOT))
    from bench_batch import _prepare

    from tests.spark_cluster import executor_python, standalone_cluster

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        if not (folder / "features.parquet").exists():
            _prepare(folder, args.customers, args.rows)
        python = executor_python(Path(tmp) / "py")
        with standalone_cluster(Path(tmp) / "cluster", workers=2) as cluster:
            for job in args.jobs:
                for engine in args.engines:
                    results[(job, engine)] = _run_stage(job, engine, folder, cluster.url, python)
    _report(results, args)


def _report(results: dict, args) -> None:
    print(f"{args.customers:,} customers (feature build, one cutoff); {args.rows:,} rows "
          f"(scoring: 3 reasons, offers, budget, write); cluster: 2 workers x 1 core x 1 GB")
    print("| job | engine | rows/s | job time | session start | driver peak |")
    print("|---|---|---|---|---|---|")
    for (job, engine), r in results.items():
        print(f"| {'feature build' if job == 'build' else 'scoring'} | {engine} | "
              f"{r['rows_per_s']:,.0f} | {r['seconds']:.1f} s | {r['session_s']:.1f} s | "
              f"{r['peak_mb'] / 1024:.2f} GB |")
    for (job, engine), r in results.items():
        if r["phases"]:
            print(f"{job} on {engine}: {r['phases']}")


if __name__ == "__main__":
    main()

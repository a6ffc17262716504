"""How the pipeline scales with the number of customers (``make bench-scale``).

At each size: generation (``write_partitioned``: part files of 100k customers, written block by
block), the feature build (``build_to_parquet``: one partition in memory at a time, read and
contract checks included), training, batch scoring of the built features and the Spark local[2]
feature build on the same partitions. Each stage runs in its own process so its peak memory is its
own (for Spark: the driver, the Python workers and the JVM together, sampled). Wall time, peak
memory, rows/s, and the growth exponent between consecutive sizes (log time ratio / log size
ratio: 1.0 is linear; for memory, 0 is flat).

Training fits on a fixed-seed sample of at most ``--train-rows`` labelled rows (read batch by
batch; the same share of every batch), so its time is that of the sample, not of the base; the
fitted model is saved and scores every built row.

    python benchmarks/bench_scale.py --customers 100000 1000000 --keep-last
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from memory import peak_mb, tree_peak

ROOT = Path(__file__).resolve().parent.parent
CUTOFFS = ("2025-07-01", "2025-10-01")  # two labelled cutoffs: a training set (fit + hold-out)
STAGES = ("generate", "features", "train", "score", "spark")


def events_of(counts: dict[str, int]) -> int:
    """The event rows among a sample writer's counts (not the customers, not _truth/)."""
    return sum(v for k, v in counts.items() if k != "customers" and not k.startswith("_"))


def stage_generate(work: Path, customers: int, months: int) -> dict:
    from features.sample import SampleSpec, write_partitioned

    t0 = time.perf_counter()
    counts = write_partitioned(SampleSpec(customers=customers, months=months, seed=1),
                               work / "crm")
    events = events_of(counts)
    return {"seconds": time.perf_counter() - t0, "rows": events + counts["customers"],
            "events": events}


def _cutoffs(cutoffs: list[str]):
    import pandas as pd

    return [pd.Timestamp(c) for c in cutoffs]


def stage_features(work: Path, cutoffs: list[str]) -> dict:
    import logging

    from features.config import FeatureConfig, LabelConfig
    from features.stream import build_to_parquet

    logging.basicConfig(filename=work / "features.log", format="%(asctime)s %(message)s")
    logging.getLogger("features.stream").setLevel(logging.DEBUG)  # a part at a time: progress

    t0 = time.perf_counter()
    built = build_to_parquet(work / "crm", _cutoffs(cutoffs), FeatureConfig(), LabelConfig(),
                             work / "features.parquet")
    return {"seconds": time.perf_counter() - t0, "rows": built.rows,
            "features": len(built.specs)}


def stage_train(work: Path, train_rows: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from features.build import FeatureSet
    from training.config import TrainConfig
    from training.dataset import from_feature_set
    from training.model import fit_churn_model

    t0 = time.perf_counter()
    meta = read_feature_set_meta(work / "features.parquet")
    file = pq.ParquetFile(work / "features.parquet", pre_buffer=False)  # pre-buffered column
    labelled = file.metadata.num_rows
    share = min(1.0, train_rows / max(labelled, 1))
    rng = np.random.default_rng(0)
    kept = []
    for batch in file.iter_batches(batch_size=100_000):  # chunks would stay until the end
        take = rng.random(batch.num_rows) < share
        kept.append(batch.filter(pa.array(take)))
    frame = pa.Table.from_batches(kept, schema=file.schema_arrow).to_pandas()
    fs = FeatureSet(frame, meta.specs, meta.label_config, meta.config, meta.data_end)
    t1 = time.perf_counter()
    scorer, _ = fit_churn_model(from_feature_set(fs, TrainConfig()), TrainConfig())
    scorer.save(work / "model" / "scorer")
    return {"seconds": time.perf_counter() - t0, "fit_s": time.perf_counter() - t1,
            "rows": len(frame), "of_rows": labelled}


def read_feature_set_meta(path: Path):
    """The feature set's metadata with no rows (the file's schema only)."""
    import pyarrow.parquet as pq

    from features.build import read_feature_set

    empty = path.with_name(".schema-only.parquet")
    pq.write_table(pq.read_schema(path).empty_table(), empty)
    try:
        return read_feature_set(empty)
    finally:
        empty.unlink()


def stage_score(work: Path) -> dict:
    from jobs.batch import BatchConfig, score_table
    from scoring.core import ScoringCore
    from scoring.model_store import LoadedModel
    from scoring.offers.catalogue import load_catalogue
    from scoring.offers.uplift import UpliftModels
    from scoring.scorer import ChurnScorer

    catalogue = load_catalogue()
    model = LoadedModel(ChurnScorer.load(work / "model" / "scorer"), "bench", "bench", "1", None,
                        UpliftModels.priors_only(catalogue, "bench"))
    t0 = time.perf_counter()
    summary = score_table(model, ScoringCore(model, catalogue), work / "features.parquet",
                          work / "scores.parquet", BatchConfig())
    rows = getattr(summary, "rows", None)
    if rows is None:
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(work / "scores.parquet").metadata.num_rows
    return {"seconds": time.perf_counter() - t0, "rows": int(rows)}


def stage_spark(work: Path, cutoffs: list[str]) -> dict:
    """The Spark local[2] build on the same partitions: the local engine's passes with each
    part's work on the executors (``jobs.spark_build``), written to one file. Then what a Spark
    job costs beyond its work, on the same session: a job of an item that does nothing, and one
    that sends back as many bytes as a part's rows hold in Arrow (the build's parts come back
    that way), ten of each."""
    import logging

    import pyarrow.parquet as pq

    from features.config import FeatureConfig, LabelConfig
    from jobs.spark_build import spark_build_to_parquet
    from jobs.spark_pool import SparkPool
    from jobs.spark_session import SparkOptions, spark_session

    logging.basicConfig(filename=work / "spark.log", format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("features").setLevel(logging.DEBUG)  # each part's arrival, the passes
    t0 = time.perf_counter()
    session = spark_session(SparkOptions.of("local[2]"))
    t1 = time.perf_counter()
    out = work / "spark-features.parquet"
    # the build alone (the probes below send bytes through the JVM), with the driver: what each
    # process held at the peak (RSS and PSS, MB). The stage's ``tree_peak_mb`` also covers the
    # probes, whose 118 MB results cross the JVM (the build's spilled results do not): in session
    # 11 they, not the build, set the stage's peak (the JVM grew to 2.8 GB)
    with tree_peak(include_self=True, roles=_spark_roles, pss_each_sample=False) as held:
        built = spark_build_to_parquet(work / "crm", _cutoffs(cutoffs), FeatureConfig(),
                                       LabelConfig(), out, spark="local[2]")
    t2 = time.perf_counter()
    part_bytes = pq.ParquetFile(out).read_row_group(0).nbytes  # a part's rows, as Arrow
    pool, probes = SparkPool(session), {}
    for name, fn, item in (("noop", int, 0), ("bytes", bytes, part_bytes)):
        start = time.perf_counter()
        for _ in pool.map(fn, [item] * 10):
            pass
        probes[f"ten_jobs_{name}_s"] = time.perf_counter() - start  # 2 at a time
    jvm_cpu_s = _tree_cpu_s()  # the JVM and its Python workers (cpu_s counts this process)
    session.stop()
    return {"seconds": t2 - t0, "session_s": t1 - t0, "build_s": t2 - t1, "rows": built.rows,
            "probe_bytes_mb": part_bytes / 2**20, "jvm_and_workers_cpu_s": jvm_cpu_s, **probes,
            "build_peak_mb": held.peak_mb, "build_pss_mb": held.pss_peak_mb,
            "build_held_mb": held.held_mb}


def _spark_roles(procs: list) -> dict[int, str]:
    """``tree_peak``'s per-process hook for a Spark stage: this process is the driver, a ``java``
    process the JVM, its children the Python daemon, theirs the daemon's forked workers."""
    import psutil

    jvms = set()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.name().startswith("java"):
                jvms.add(p.pid)
    named = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            named[p.pid] = ("driver" if p.pid == os.getpid() else "jvm" if p.pid in jvms else
                            "python daemon" if p.ppid() in jvms else "python worker")
    return named


def _tree_cpu_s() -> float:
    """CPU seconds of this process's living descendants (Spark's JVM and Python workers, which
    the stage's ``RUSAGE_CHILDREN`` misses: they are not waited for)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = child.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _run(stage: str, args, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--work", str(work),
           "--customers", str(args.customers[0]), "--months", str(args.months),
           "--train-rows", str(args.train_rows), "--cutoffs", *args.cutoffs]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true",
           "CHURN_PROGRESS": "0"}
    with tree_peak() as sampled:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if result.returncode:
        sys.stderr.write(result.stderr[-4000:])
        return {"failed": result.stderr.strip().splitlines()[-1:] or ["?"]}
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["tree_peak_mb"] = sampled.peak_mb
    out["tree_pss_mb"] = sampled.pss_peak_mb
    return out


def _exponent(a: float, b: float, na: int, nb: int) -> str:
    if not a or not b or a <= 0 or b <= 0:
        return "-"
    return f"{math.log(b / a) / math.log(nb / na):.2f}"


def _table(results: dict[int, dict[str, dict]]) -> None:
    sizes = sorted(results)
    print("\n| stage | customers | rows | wall | peak memory | rows/s | time exponent | "
          "memory exponent |")
    print("|---|---|---|---|---|---|---|---|")
    for stage in STAGES:
        prev = None
        for n in sizes:
            r = results[n].get(stage)
            if r is None:
                continue
            if "failed" in r:
                print(f"| {stage} | {n:,} | - | failed: {r['failed'][0][:80]} | | | | |")
                continue
            mem = r["tree_peak_mb"] if stage in ("spark", "features") else r["peak_mb"]
            if stage == "spark" and r.get("build_peak_mb"):  # the build, not the probes after it
                mem = r["build_peak_mb"]
            rate = r["rows"] / r["seconds"] if r["seconds"] else 0
            te = me = "-"
            if prev is not None:
                pn, pr, pm = prev
                te, me = _exponent(pr["seconds"], r["seconds"], pn, n), _exponent(pm, mem, pn, n)
            pss = (f" (PSS {r['tree_pss_mb'] / 1024:.2f} GB)"
                   if stage in ("spark", "features") and r.get("tree_pss_mb") else "")
            if stage == "spark" and r.get("build_pss_mb"):
                pss = (f" (PSS {r['build_pss_mb'] / 1024:.2f} GB; with the probes "
                       f"{r['tree_peak_mb'] / 1024:.2f} GB)")
            print(f"| {stage} | {n:,} | {r['rows']:,} | {r['seconds']:.1f} s | "
                  f"{mem / 1024:.2f} GB{pss} | {rate:,.0f} | {te} | {me} |")
            prev = (n, r, mem)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000,
                                                                      3_000_000, 10_000_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--months-10m", type=int, default=None,
                        help="months of history at 10M customers and more (disk)")
    parser.add_argument("--cutoffs", nargs="+", default=list(CUTOFFS))
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--work", type=Path, default=Path("bench-out/scale"))
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--reuse", action="store_true", help=(
        "run the --stages on what an earlier --keep run left (e.g. --stages train score spark)"))
    parser.add_argument("--json", type=Path, help="append each stage's result to this file")
    parser.add_argument("--table", type=Path, help="only print the table of a --json file")
    args = parser.parse_args()
    if args.table:
        results: dict[int, dict[str, dict]] = {}
        for line in args.table.read_text().splitlines():
            r = json.loads(line)
            results.setdefault(r["customers"], {})[r["stage"]] = r
        _table(results)
        return
    if args.stage:
        work = args.work
        call = {"generate": lambda: stage_generate(work, args.customers[0], args.months),
                "features": lambda: stage_features(work, args.cutoffs),
                "train": lambda: stage_train(work, args.train_rows),
                "score": lambda: stage_score(work),
                "spark": lambda: stage_spark(work, args.cutoffs)}[args.stage]
        result = call()
        result["peak_mb"] = peak_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time: what a shared machine's
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # load does not inflate (workers too)
        result["cpu_s"] = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime
        print(json.dumps(result))
        return
    results: dict[int, dict[str, dict]] = {}
    for n in args.customers:
        work = (args.work / f"n{n}").resolve()
        if not args.reuse:
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        months = args.months_10m if (args.months_10m and n >= 10_000_000) else args.months
        sub = argparse.Namespace(**{**vars(args), "customers": [n], "months": months})
        results[n] = {}
        for stage in args.stages:
            r = _run(stage, sub, work)
            results[n][stage] = r
            print(f"{n:>11,} {stage:<9} {json.dumps(r)}", flush=True)
            if args.json:  # stage by stage: a long run cut short keeps what it measured
                with args.json.open("a") as f:
                    f.write(json.dumps({"customers": n, "months": months, "stage": stage, **r})
                            + "\n")
            if "failed" in r and stage in ("generate", "features"):
                break
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _table(results)


if __name__ == "__main__":
    main()

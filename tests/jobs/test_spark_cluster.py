"""The Spark engine on a real standalone cluster (a master and two workers on 127.0.0.1) gives the
local engine's numbers, and fails with one line when the cluster cannot run it.

The executors' Python is this interpreter without ``site`` and with the virtualenv's packages on
its path: it can import numpy, pandas, lightgbm..., but not this project (not even the editable
install, which would be /work/main's code, not this checkout's). So every passing job here ran the
code the driver shipped. The tests share one Spark session per executor Python (starting one on
a cluster takes seconds); the last ones need sessions of their own.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from features.config import FeatureConfig, LabelConfig
from tests.spark_cluster import executor_python

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)
runner = CliRunner()
CUTOFFS = [pd.Timestamp("2025-04-01"), pd.Timestamp("2025-07-01")]
SCORE_AT = pd.Timestamp("2025-12-01")
LOOPBACK = (("spark.driver.host", "127.0.0.1"), ("spark.driver.bindAddress", "127.0.0.1"),
            ("spark.executor.memory", "1g"))


@pytest.fixture(scope="module")
def cluster(spark_cluster, tmp_path_factory):
    """Options for a session on the cluster whose executors cannot import the project unless the
    job ships it; the session is stopped when the module ends."""
    from jobs.spark_session import SparkOptions, stop_session

    python = executor_python(tmp_path_factory.mktemp("executor-python"))
    yield SparkOptions(master=spark_cluster.url, conf=LOOPBACK, python=python)
    stop_session()


def _executors(sc) -> int:
    return sc._jsc.sc().getExecutorIds().size()


def _wait_executors(sc, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _executors(sc) < n:
        assert time.monotonic() < deadline, f"{n} executors did not join ({_executors(sc)})"
        time.sleep(0.5)


def test_executors_run_the_code_the_driver_sent(cluster):
    from jobs.spark_session import executor_report, spark_session

    sc = spark_session(cluster).sparkContext
    _wait_executors(sc, 2)
    reports = executor_report(sc, tasks=8)
    assert all(not r["missing"] for r in reports), reports
    assert all("churn_code_" in (r["jobs_file"] or "") for r in reports), \
        {r["jobs_file"] for r in reports}
    assert all(r["python"].endswith("python") or "python" in r["python"] for r in reports)


def test_cluster_build_on_the_partitions_writes_the_local_engines_file(cluster, tmp_path):
    """The local engine's build with each part's passes on the cluster's executors (which run
    only the code the driver shipped): the same bytes as the local engine's file."""
    from features.sample import SampleSpec, write_partitioned
    from features.stream import build_to_parquet
    from jobs.spark_build import spark_build_to_parquet

    write_partitioned(SampleSpec(customers=1_000, months=15, seed=5, block=400), tmp_path / "crm")
    cutoffs = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]
    build_to_parquet(tmp_path / "crm", cutoffs, FeatureConfig(), LabelConfig(),
                     tmp_path / "local.parquet", workers=1)
    out = tmp_path / "cluster" / "features.parquet"
    built = spark_build_to_parquet((tmp_path / "crm").as_uri(), cutoffs, FeatureConfig(),
                                   LabelConfig(), out, spark=cluster)
    assert built.rows > 500
    assert out.read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["features.parquet"]


@pytest.fixture(scope="module")
def local_scores(served, sample_dir, tmp_path_factory):
    """The local engine's output for the sample at SCORE_AT: the reference."""
    from churn.settings import Settings
    from jobs.batch import BatchConfig
    from jobs.runner import run_scoring_job

    out = tmp_path_factory.mktemp("local-scores") / "local.parquet"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
        run_scoring_job("models:/churn@champion", out, BatchConfig(campaign_budget=400.0),
                        Settings(), data=sample_dir, cutoff=SCORE_AT, track=False)
    return pd.read_parquet(out)


def _same_scores(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("customer_id").reset_index(drop=True)
    b = b.sort_values("customer_id").reset_index(drop=True)
    assert list(a["customer_id"]) == list(b["customer_id"]) and len(a) > 500
    assert np.allclose(a["churn_probability"], b["churn_probability"], rtol=0, atol=1e-9)
    for col in ("reasons", "risk_band", "offer_id", "cutoff"):
        assert (a[col] == b[col]).all(), col
    assert np.allclose(a["offer_expected_net_value"], b["offer_expected_net_value"], atol=1e-9)


def _score_on(spark, served, sample_dir, out, monkeypatch):
    from churn.settings import Settings
    from jobs.batch import BatchConfig
    from jobs.runner import run_scoring_job

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
    summary, _ = run_scoring_job("models:/churn@champion", out, BatchConfig(campaign_budget=400.0),
                                 Settings(), data=sample_dir.as_uri(), cutoff=SCORE_AT,
                                 engine="spark", spark=spark, track=False)
    return summary


def test_cluster_scoring_equals_local_scoring(cluster, served, sample_dir, local_scores,
                                              monkeypatch, tmp_path):
    out = tmp_path / "cluster.parquet"
    summary = _score_on(cluster, served, sample_dir, out.as_uri(), monkeypatch)
    assert summary.rows_in == summary.rows_scored + summary.rows_quarantined
    _same_scores(local_scores, pd.read_parquet(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cluster.manifest.json", "cluster.parquet", "cluster.quarantine.parquet"]


def test_the_model_loads_once_per_executor_process_not_per_batch(cluster, served, tmp_path,
                                                                 monkeypatch):
    from churn.settings import Settings
    from jobs.batch import BatchConfig
    from jobs.runner import load_model
    from jobs.spark_scoring import spark_score
    from jobs.spark_session import spark_session
    from jobs.spark_ship import load_counter
    from scoring.core import ScoringCore
    from scoring.offers.catalogue import load_catalogue

    table = tmp_path / "features"
    frame = served["features"].frame.drop(columns=["label"])
    table.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 12)):
        frame.iloc[part].to_parquet(table / f"part-{i:02d}.parquet", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
    model = load_model("models:/churn@champion")
    # a model no executor has seen yet (Python workers live on between jobs, and keep theirs)
    scorer = dataclasses.replace(model.scorer, meta={**model.scorer.meta, "test": uuid.uuid4().hex})
    model = dataclasses.replace(model, scorer=scorer)
    session = spark_session(cluster)
    session.conf.set("spark.sql.files.maxPartitionBytes", "65536")
    session.conf.set("spark.sql.files.openCostInBytes", "1")
    try:
        partitions = session.read.parquet(table.as_uri()).rdd.getNumPartitions()
        loads = load_counter(session.sparkContext)
        summary = spark_score(model, ScoringCore(model, load_catalogue()), tmp_path / "o.parquet",
                              BatchConfig(chunk_size=100), Settings(), features=table,
                              spark=cluster, loads=loads)
    finally:
        session.conf.unset("spark.sql.files.maxPartitionBytes")
        session.conf.unset("spark.sql.files.openCostInBytes")
    assert summary.rows_in == len(frame)
    per_process = loads.value
    log.warning("model loads per executor process: %s (%d partitions)", per_process, partitions)
    assert partitions >= 12, partitions
    assert per_process and set(per_process.values()) == {1}, per_process  # once per process
    assert sum(per_process.values()) <= partitions / 3, (per_process, partitions)


def test_a_worker_killed_mid_job_leaves_the_same_output_or_none(
        cluster, spark_cluster, served, sample_dir, local_scores, monkeypatch, tmp_path):
    """A third worker joins; when every executor runs a task it is killed (SIGKILL to its
    process group: the worker, its executor and their Python workers)."""
    from jobs.spark_session import SparkJobError, spark_session

    spark_cluster.add_workers(1)
    sc = spark_session(cluster).sparkContext
    _wait_executors(sc, 3)
    session = spark_session(cluster)
    session.conf.set("spark.sql.adaptive.enabled", "false")  # keep 8 tasks in the bucket stage
    # no delay scheduling: the new executor holds no shuffle output, and with Spark's 3 s wait
    # for the others its core could stay idle, so that all three are never busy at once (the
    # session's conf refuses a core setting; the scheduler reads the context's, for each stage)
    live = sc._jsc.sc().conf()
    live.set("spark.locality.wait", "0")
    killed, done = [], threading.Event()

    def kill_when_busy():
        tracker = sc._jsc.sc().statusTracker()
        while not done.is_set():
            infos = [i for i in tracker.getExecutorInfos() if i.port() > 0]
            busy = [i for i in infos if i.numRunningTasks() > 0]
            if len(busy) >= 3:
                spark_cluster.kill_worker(len(spark_cluster.workers) - 1)
                killed.append(time.monotonic())
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    out = tmp_path / "out" / "scores.parquet"
    try:
        _score_on(cluster, served, sample_dir, out, monkeypatch)
        outcome = None
    except SparkJobError as exc:
        outcome = str(exc)
    finally:
        finished = time.monotonic()
        done.set()
        killer.join(10)
        session.conf.unset("spark.sql.adaptive.enabled")
        live.remove("spark.locality.wait")
    assert killed and killed[0] < finished, "the worker was not killed while the job ran"
    assert not spark_cluster.workers[-1].alive()
    log.warning("worker killed %.1f s before the job ended; outcome: %s",
                finished - killed[0], outcome or "completed through Spark's retries")
    if outcome is None:  # Spark re-ran the lost tasks elsewhere
        _same_scores(local_scores, pd.read_parquet(out))
    else:
        assert "\n" not in outcome and not out.exists(), outcome
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_executors_without_the_packages_fail_with_one_line(spark_cluster, sample_dir, tmp_path):
    bare = executor_python(tmp_path, deps=False)
    out = tmp_path / "fs.parquet"
    started = time.monotonic()
    run = _cli("features", "build", "--data", sample_dir, "--cutoff", "2025-04-01", "--out", out,
               "--engine", "spark", "--spark-master", spark_cluster.url,
               *[x for k, v in LOOPBACK for x in ("--spark-conf", f"{k}={v}")],
               "--spark-conf", f"spark.pyspark.python={bare}")
    assert run.exit_code == 1, run.output
    lines = [ln for ln in run.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, run.output
    for name in ("numpy", "pandas", "pyarrow", "lightgbm"):
        assert name in lines[0], lines[0]
    assert "(this project)" not in lines[0], lines[0]  # shipped: features, scoring, jobs import
    assert not out.exists() and time.monotonic() - started < 180


def test_executors_without_the_project_fail_with_one_line_when_it_is_not_shipped(
        spark_cluster, sample_dir, tmp_path):
    python = executor_python(tmp_path, deps=True)
    out = tmp_path / "fs.parquet"
    run = _cli("features", "build", "--data", sample_dir, "--cutoff", "2025-04-01", "--out", out,
               "--engine", "spark", "--spark-master", spark_cluster.url, "--no-ship-code",
               *[x for k, v in LOOPBACK for x in ("--spark-conf", f"{k}={v}")],
               "--spark-conf", f"spark.pyspark.python={python}")
    assert run.exit_code == 1, run.output
    lines = [ln for ln in run.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, run.output
    assert "import features, jobs, scoring (this project)" in lines[0], lines[0]
    assert "numpy" not in lines[0] and not out.exists()


def test_a_master_without_workers_fails_within_the_executor_timeout(tmp_path):
    from jobs.spark_session import SparkJobError, SparkOptions, spark_session, stop_session
    from tests.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path / "empty", workers=0) as empty:
        started = time.monotonic()
        with pytest.raises(SparkJobError, match="no executor joined") as err:
            spark_session(SparkOptions(master=empty.url, conf=LOOPBACK, executor_timeout=5))
        assert time.monotonic() - started < 90 and "\n" not in str(err.value)
    stop_session()

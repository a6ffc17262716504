"""Shared fixtures: tiny hand-built CRM tables and one small generated sample per test run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

# `make test` runs on two pytest-xdist workers: tests/xdist_groups.py puts the modules that use
# the session's mlflow server, training or Spark cluster in two groups, each run by one worker
from tests.xdist_groups import pytest_collection_modifyitems  # noqa: E402, F401

# MLflow's HTTP bounds (MLFLOW_HTTP_REQUEST_*) as this test process started. The library's
# use_tracking() sets them with os.environ.setdefault, for the rest of the process: without this,
# whichever test or session fixture (`trained`, a CliRunner command) first trained or served in
# process on a worker chose the MLflow timeouts of every later test on it, by the order xdist ran
# them. Each test now ends with them as they were at the start; the servers and commands it starts
# set their own. (Not a generous value for the whole process: every subprocess inherits
# os.environ, and the servers under test must run with the bounds the product gives them.)
_MLFLOW_HTTP = "MLFLOW_HTTP_REQUEST_"
_MLFLOW_HTTP_AT_START = {k: v for k, v in os.environ.items() if k.startswith(_MLFLOW_HTTP)}


@pytest.fixture(autouse=True)
def mlflow_http_bounds_do_not_leak():
    yield
    for name in [k for k in os.environ if k.startswith(_MLFLOW_HTTP)]:
        if name not in _MLFLOW_HTTP_AT_START:
            del os.environ[name]
    os.environ.update(_MLFLOW_HTTP_AT_START)


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three customers, a handful of events each; values chosen to be checked by hand."""
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C"],
        "signup_date": pd.to_datetime(["2023-01-01", "2023-06-01", "2024-03-01"]),
        "cancel_date": pd.to_datetime([None, "2024-05-10", None]),
        "has_contract": [False, True, True],
        "plan": ["basic", "premium", "basic"],
    })
    orders = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B", "C"],
        "order_ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-02", "2024-02-15",
                                    "2024-03-20", "2024-03-05"]),
        "amount": [10.0, 20.0, 30.0, 100.0, 50.0, 5.0],
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
    })
    tickets = pd.DataFrame({
        "customer_id": ["A", "A", "B"],
        "opened_ts": pd.to_datetime(["2024-02-10", "2024-03-25", "2024-03-01"]),
        "closed_ts": pd.to_datetime(["2024-02-14", "2024-04-10", "2024-03-01T06:00"], format="ISO8601"),
        "channel": ["phone", "email", "chat"],
        "is_complaint": [True, True, False],
        "escalated": [True, False, False],
        "reopened": [False, False, False],
        "resolved_first_contact": [False, False, True],
    })
    surveys = pd.DataFrame({
        "customer_id": ["A", "A", "B", "C"],
        "sent_ts": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-03-01", "2024-03-10"]),
        "response_ts": pd.to_datetime(["2024-01-06", "2024-03-03", None, None]),
        "kind": ["nps", "nps", "nps", "csat"],
        "score": [9.0, 4.0, None, None],
    })
    engagement = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B"],
        "event_ts": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-10", "2024-03-05",
                                    "2024-03-06"]),
        "event_type": ["email_sent", "email_open", "web_session", "email_sent", "app_login"],
        "value": [None, None, 4.0, None, None],
    })
    offers = pd.DataFrame({
        "customer_id": ["A", "B"],
        "sent_ts": pd.to_datetime(["2024-02-20", "2024-02-20"]),
        "offer_id": ["discount_10", "service_call"],
        "treated": [True, False],
        "accepted_ts": pd.to_datetime(["2024-02-22", None]),
        "cost": [10.0, 0.0],
    })
    return {"customers": customers, "orders": orders, "tickets": tickets, "surveys": surveys,
            "engagement": engagement, "offers": offers}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def tiny() -> dict[str, pd.DataFrame]:
    return tiny_tables()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A small generated CRM (3,000 customers, 24 months), shared by the whole run."""
    from features.sample import SampleSpec, generate, write_sample

    out = tmp_path_factory.mktemp("sample") / "crm"
    write_sample(generate(SampleSpec(customers=3_000, months=24, seed=11)), out)
    return out


@pytest.fixture(scope="session")
def sample_crm(sample_dir):
    from features.io import load_crm

    return load_crm(sample_dir)


from tests.ports import free_port  # noqa: E402

# the service refuses keys under 32 characters
API_KEYS = ("test-key-1-0123456789abcdefghijklmnop", "test-key-2-0123456789abcdefghijklmnop")


def wait_for_http(url: str, timeout: float = 90.0, proc=None) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def running_server(cmd: list[str], ready_path: str, port: int, log_path: Path,
                   env: dict | None = None, cwd: str | None = None, timeout: float = 120):
    """Start a real server process, wait until ``ready_path`` answers, stop it afterwards. It and
    everything it starts die with pytest, also when pytest is killed (tests/reaper.py)."""
    import signal
    import subprocess

    from tests.reaper import reaped

    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(reaped(cmd), stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})},
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + ready_path, timeout=timeout, proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# MLflow's server-side job runner (GenAI jobs: a runner and seven huey consumers, about 25 s of
# CPU at each start on this machine) is not used by the project: test servers start without it
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@pytest.fixture(scope="session")
def mlflow_server_root(tmp_path_factory) -> Path:
    """The folder of the session's `mlflow server`: its SQLite store (mlflow.db) and artifacts."""
    return tmp_path_factory.mktemp("mlflow-server")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_root):
    """A real `mlflow server` on a free loopback port, with its own SQLite store and artifacts."""
    import sys

    root = mlflow_server_root
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
           f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running_server(cmd, "/health", port, root / "server.log", env=MLFLOW_SERVER_ENV) as url:
        yield url


@pytest.fixture
def tracking_server(mlflow_server, monkeypatch):
    """Point MLflow at the real server for one test (the env var, as a user would)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    yield mlflow_server
    mlflow.set_tracking_uri(None)


@pytest.fixture
def local_tracking(tmp_path, monkeypatch):
    """An embedded SQLite tracking store in a temporary working directory."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    mlflow.set_tracking_uri(None)


from features.build import build_feature_set  # noqa: E402
from features.config import FeatureConfig, LabelConfig  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.dataset import from_feature_set  # noqa: E402

TRAIN_CUTOFFS = [pd.Timestamp(c) for c in ("2024-07-01", "2024-10-01", "2025-01-01", "2025-04-01",
                                     "2025-07-01")]


@pytest.fixture(scope="session")
def feature_set(sample_crm):
    return build_feature_set(sample_crm, TRAIN_CUTOFFS, FeatureConfig(), LabelConfig())


@pytest.fixture(scope="session")
def training_data(feature_set):
    return from_feature_set(feature_set, TrainConfig())


@pytest.fixture(scope="session")
def trained(mlflow_server, sample_crm, feature_set):
    """THE training of the sample, once per run: the real pipeline (model selection, calibration,
    baselines, offer effects from the sample's campaigns) logged to the real tracking server,
    registered as ``churn`` and promoted. ``fitted``, ``served`` and the portable-model test's
    champion all use it. Returns the pipeline's result and the fitted outcome it logged (caught on
    its way from ``fit_and_evaluate`` to the logging; nothing of the training is replaced)."""
    import mlflow

    from training import pipeline
    from training.registry import promote

    outcomes = []
    fit_and_evaluate = pipeline.fit_and_evaluate

    def keep(*args, **kwargs):
        outcomes.append(fit_and_evaluate(*args, **kwargs))
        return outcomes[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        mp.setattr(pipeline, "fit_and_evaluate", keep)
        try:
            result = pipeline.train_on_feature_set(feature_set, "fp", FeatureConfig(),
                                                   TrainConfig(), crm=sample_crm)
            assert promote("churn").promoted
        finally:
            mlflow.set_tracking_uri(None)
    (outcome,) = outcomes
    return {"result": result, "outcome": outcome, "tracking_uri": mlflow_server}


@pytest.fixture(scope="session")
def fitted(trained):
    """(scorer, fit info) of the shared training: ``fit_churn_model`` on ``training_data``'s rows
    with the default TrainConfig, as the pipeline ran it."""
    outcome = trained["outcome"]
    return outcome.scorer, outcome.info


@pytest.fixture(scope="session")
def served(tmp_path_factory, sample_crm, trained):
    """The shared training's champion (uplift included) on the session's tracking server, and an
    online store materialised from the latest cutoff. Returns the environment a service needs."""
    from features.store import materialize

    root = tmp_path_factory.mktemp("served")
    latest = build_feature_set(sample_crm, [pd.Timestamp("2025-12-01")], FeatureConfig(),
                               LabelConfig(), population_only=False)
    materialize(latest.frame, latest.feature_names, root / "store.sqlite")
    return {"MLFLOW_TRACKING_URI": trained["tracking_uri"],
            "CHURN_STORE": str(root / "store.sqlite"),
            "CHURN_API_KEY": ",".join(API_KEYS), "CHURN_POLL_SECONDS": "1",
            "CHURN_MODEL_CACHE": str(root / "model-cache"),
            "root": str(root), "features": latest, "version": trained["result"].model_version}


def register_copy(url: str, name: str, version: str, new_name: str | None = None) -> str:
    """Register the model of ``name`` version ``version`` again (under ``new_name`` if given) on
    the tracking server at ``url``, without retraining; returns the new version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    current = client.get_model_version(name, version)
    model_id = getattr(current, "model_id", None)
    if model_id is None and current.source.startswith("models:/m-"):  # a logged model's source
        model_id = current.source[len("models:/"):]
    if new_name:
        with contextlib.suppress(MlflowException):  # already there
            client.create_registered_model(new_name)
    return str(client.create_model_version(new_name or name, source=current.source,
                                           run_id=current.run_id, model_id=model_id).version)


@pytest.fixture
def served_workdir(served, monkeypatch, tmp_path):
    """A temporary working directory with MLflow pointed at the served champion's store."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    mlflow.set_tracking_uri(None)

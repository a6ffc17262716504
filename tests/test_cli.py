"""The `churn` command as a user meets it, and the README's `make demo`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command():
    run = runner.invoke(app, ["--help"])
    assert run.exit_code == 0
    for command in ("data", "features", "train", "promote", "score", "demo", "offers"):
        assert command in run.output


def test_features_build_from_the_command_line(tmp_path, sample_dir):
    from features.build import read_feature_set

    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--data", str(sample_dir), "--cutoff",
                              "2025-01-01", "--cutoff", "2025-06-01", "--horizon-days", "60",
                              "--definition", "contractual", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "2 cutoffs (contractual, 60-day horizon)" in run.output
    fs = read_feature_set(out)
    assert fs.label_config.definition == "contractual" and fs.label_config.horizon_days == 60
    assert fs.frame["cutoff"].nunique() == 2


@pytest.mark.parametrize("args,words", [
    (["features", "build", "--data", "X", "--cutoff", "2025-13-01", "--out", "o.parquet"],
     "not a date"),
    (["features", "build", "--data", "X", "--cutoff", "2025-01-01", "--out", "o.parquet",
      "--definition", "sometimes"], "--definition"),
    (["train"], "either --data"),
    (["train", "--data", "X", "--cutoff", "2025-01-01"], "at least two --cutoff"),
    (["train", "--table", "t.csv"], "--id and --label"),
    (["train", "--table", "t.csv", "--id", "a", "--label", "b", "--catalogue", "t.csv"],
     "--catalogue is for the event path"),
    (["data", "generate", "--out", "o", "--block", "0"], "--block must be at least 1"),
    (["data", "generate", "--out", "o", "--campaigns", "weekly"], "--campaigns must be one of"),
    (["features", "build", "--data", "X", "--cutoff", "2025-01-01", "--cutoff", "2024-10-01",
      "--cutoff", "2025-01-01", "--out", "o"], "--cutoff 2025-01-01 given more than once"),
], ids=["bad date", "bad definition", "no source", "one cutoff", "table without id",
        "catalogue on the table path", "empty block", "unknown campaign style",
        "a cutoff twice"])
def test_bad_arguments_are_named(tmp_path, sample_dir, args, words):
    args = [str(sample_dir) if a == "X" else a for a in args]
    if "t.csv" in args:
        (tmp_path / "t.csv").write_text("a,b\n1,2\n")
        args = [str(tmp_path / "t.csv") if a == "t.csv" else a for a in args]
    if "o" in args:  # nothing may be written where the output was asked for
        args = [str(tmp_path / "o") if a == "o" else a for a in args]
    run = runner.invoke(app, args)
    assert run.exit_code == 2, run.output
    assert words in run.output, run.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_train_on_events_then_promote_from_the_command_line(local_tracking, sample_dir):
    run = runner.invoke(app, ["train", "--data", str(sample_dir), "--cutoff", "2024-10-01",
                              "--cutoff", "2025-01-01", "--cutoff", "2025-04-01", "--json"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["model_version"] == "1" and summary["metrics"]["roc_auc"] > 0.65
    assert "baseline recency_rule" in run.output and "baseline logistic_rfm" in run.output
    promoted = runner.invoke(app, ["promote"])
    assert promoted.exit_code == 0 and "version 1 promoted" in promoted.output, promoted.output
    again = runner.invoke(app, ["promote"])
    assert again.exit_code == 0 and "already the champion" in again.output


@pytest.mark.slow
def test_make_demo_runs_end_to_end(tmp_path):
    """What the README promises: `make demo` generates, builds, trains and registers a champion."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    # 20,000 customers instead of the default 60,000: the same steps in a third of the time
    result = subprocess.run(["make", "-C", str(ROOT), "demo", f"DEMO_DIR={tmp_path}/demo",
                             "DEMO_CUSTOMERS=20000"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("generating a sample CRM", "checking the data contract", "point-in-time features",
                 "training a calibrated churn model", "model (", "cross-validation (",
                 "logistic_rfm",
                 "is now champion"):
        assert step in out, f"{step!r} missing from the demo output:\n{out[-2000:]}"
    assert (tmp_path / "demo" / "features.parquet").exists()
    assert (tmp_path / "demo" / "plots" / "roc.png").exists()


@pytest.mark.slow
def test_retrain_compares_with_the_champion_and_goes_through_the_gate(local_tracking, sample_dir):
    first = runner.invoke(app, ["train", "--data", str(sample_dir), "--cutoff", "2024-10-01",
                                "--cutoff", "2025-01-01", "--cutoff", "2025-04-01"])
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, ["promote"]).exit_code == 0
    plots = local_tracking / "plots"
    run = runner.invoke(app, ["retrain", "--data", str(sample_dir), "--cutoff", "2025-01-01",
                              "--cutoff", "2025-04-01", "--cutoff", "2025-07-01", "--plots",
                              str(plots)])
    assert run.exit_code in (0, 1), run.output
    assert "challenger (v2)" in run.output and "champion (v1)" in run.output
    assert ("version 2 promoted" in run.output) == (run.exit_code == 0), run.output
    assert (plots / "comparison.png").exists()
    from mlflow import MlflowClient

    card = MlflowClient().get_model_version("churn", "2").description
    assert card.startswith("# Model card: churn version 2") and "Known limits" in card


# --- risk bands are a setting (`bands:` in the config) ---------------------------------------

BANDS_OUT_OF_ORDER = "bands:\n  medium: 0.5\n  high: 0.2\n"


def _customers(n: int, seed: int) -> pd.DataFrame:
    """A small customer table with a label that two columns explain."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n).round(2)
    logit = 0.5 - 0.05 * tenure + 0.02 * charges
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"cid": [f"K{i:04d}" for i in range(n)], "tenure": tenure,
                         "monthly_charges": charges, "churned": churned.astype(int)})


def test_bands_in_the_config_decide_the_risk_band_that_score_writes(local_tracking):
    tmp = local_tracking
    _customers(400, seed=0).to_parquet(tmp / "train.parquet", index=False)
    _customers(200, seed=1).drop(columns=["churned"]).to_parquet(tmp / "new.parquet", index=False)
    trained = runner.invoke(app, ["train", "--table", str(tmp / "train.parquet"), "--id", "cid",
                                  "--label", "churned"])
    assert trained.exit_code == 0, trained.output

    def score(out: str, *extra: str) -> pd.DataFrame:
        run = runner.invoke(app, ["score", "--no-track", "--model", "models:/churn@challenger",
                                  "--table", str(tmp / "new.parquet"), "--id", "cid", "--out",
                                  str(tmp / out), *extra])
        assert run.exit_code == 0, run.output
        return pd.read_parquet(tmp / out)

    default = score("default.parquet")
    p = default["churn_probability"].to_numpy()
    assert list(default["risk_band"]) == list(
        np.where(p >= 0.3, "high", np.where(p >= 0.1, "medium", "low"))), "default edges 0.1, 0.3"
    medium, high = (round(float(np.quantile(p, q)), 3) for q in (0.5, 0.8))
    (tmp / "bands.yaml").write_text(f"bands:\n  medium: {medium}\n  high: {high}\n")
    custom = score("custom.parquet", "--config", str(tmp / "bands.yaml"))
    assert np.allclose(custom["churn_probability"], p), "the bands must not move the scores"
    expected = np.where(p >= high, "high", np.where(p >= medium, "medium", "low"))
    assert list(custom["risk_band"]) == list(expected), f"bands {medium}, {high} not applied"
    assert (custom["risk_band"] != default["risk_band"]).any(), "the config changed nothing"


@pytest.mark.parametrize("args", [
    ["score", "--features", "f.parquet", "--out", "out.parquet"],
    ["monitor", "--features", "f.parquet", "--report", "out.html", "--no-track"],
    ["train", "--data", "X", "--cutoff", "2025-01-01", "--cutoff", "2025-04-01"],
    ["features", "build", "--data", "X", "--cutoff", "2025-01-01", "--out", "out.parquet"],
    ["serve", "--store", "out.sqlite"],
], ids=["score", "monitor", "train", "features build", "serve"])
def test_bands_out_of_order_are_refused_before_anything_runs(local_tracking, sample_dir, args,
                                                             monkeypatch):
    monkeypatch.setenv("CHURN_API_KEY", "k" * 32)
    (local_tracking / "churn.yaml").write_text(BANDS_OUT_OF_ORDER)
    before = sorted(p.name for p in local_tracking.iterdir())
    run = runner.invoke(app, [str(sample_dir) if a == "X" else a for a in args]
                        + ["--config", "churn.yaml"])
    assert run.exit_code == 2, run.output
    assert "churn.yaml: bands" in run.output and "medium (0.5) > high (0.2)" in run.output, \
        run.output
    assert sorted(p.name for p in local_tracking.iterdir()) == before, "something was written"


@pytest.mark.parametrize("config, env_bands, passed", [
    ("bands: {medium: 0.2, high: 0.6}", None, "0.2,0.6"),
    ("bands: {medium: 0.2, high: 0.6}", "0.15,0.5", "0.2,0.6"),    # the config file wins
    ("monitor: {psi_alert: 0.3}", "0.15,0.5", "0.15,0.5"),          # no bands: the variable stays
    (None, None, "0.1,0.3"),
], ids=["config", "config over env", "env kept", "defaults"])
def test_serve_hands_the_configured_bands_to_the_service(tmp_path, monkeypatch, config,
                                                         env_bands, passed):
    import subprocess

    from serving.settings import ServeSettings

    seen = {}
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: seen.update(env) or 0)
    monkeypatch.setenv("CHURN_API_KEY", "k" * 32)
    if env_bands:
        monkeypatch.setenv("CHURN_RISK_BANDS", env_bands)
    else:
        monkeypatch.delenv("CHURN_RISK_BANDS", raising=False)
    from features.store import materialize
    from tests.features.test_store import _frame

    materialize(_frame(), ["recency_days"], tmp_path / "store.sqlite")
    args = ["serve", "--store", str(tmp_path / "store.sqlite")]
    if config:
        (tmp_path / "churn.yaml").write_text(config + "\n")
        args += ["--config", str(tmp_path / "churn.yaml")]
    run = runner.invoke(app, args)
    assert run.exit_code == 0, run.output
    assert seen["CHURN_RISK_BANDS"] == passed
    medium, high = map(float, passed.split(","))
    assert ServeSettings.from_env(seen).bands.model_dump() == {"medium": medium, "high": high}


# --- `churn train --catalogue` ---------------------------------------------------------------

EVENT_TRAIN = ["train", "--cutoff", "2024-10-01", "--cutoff", "2025-01-01", "--cutoff",
               "2025-04-01"]


@pytest.mark.parametrize("text, words", [
    (None, "offer catalogue offers.yaml does not exist"),
    ("offers: [unclosed\n", "offers.yaml is not valid YAML"),
    ("offers:\n  - {id: call, name: Call, channel: phone, cost: -5, prior_effect: 0.1}\n",
     "offers.yaml is not a valid offer catalogue:\n  - offers[0] (call).cost"),
], ids=["missing", "not yaml", "negative cost"])
def test_a_bad_catalogue_stops_training_before_it_starts(local_tracking, sample_dir, text, words):
    if text is not None:
        (local_tracking / "offers.yaml").write_text(text)
    before = sorted(p.name for p in local_tracking.iterdir())
    run = runner.invoke(app, [*EVENT_TRAIN, "--data", str(sample_dir), "--catalogue",
                              "offers.yaml"])
    assert run.exit_code == 2, run.output
    assert f"error: {words}" in run.output, run.output
    assert sorted(p.name for p in local_tracking.iterdir()) == before, \
        "a tracking store or run was written: something was trained"


def test_train_passes_the_catalogue_to_the_event_path(local_tracking, sample_dir, monkeypatch):
    from training.pipeline import TrainResult

    seen = {}

    def fake_train_on_events(crm, cutoffs, features, labels, config, tune_trials=0,
                             plots_dir=None, catalogue=None, data_end=None, readouts=None):
        seen["catalogue"] = catalogue
        metrics = dict.fromkeys(("roc_auc", "pr_auc", "brier", "calibration_error", "lift_top10",
                                 "capture_top10"), 0.5)
        return TrainResult("run", "models:/churn/1", "1", metrics, {}, True, "fine")

    monkeypatch.setattr("training.pipeline.train_on_events", fake_train_on_events)
    (local_tracking / "offers.yaml").write_text(
        "offers:\n  - {id: call_back, name: Call back, channel: phone, cost: 5, "
        "prior_effect: 0.1}\n")
    run = runner.invoke(app, [*EVENT_TRAIN, "--data", str(sample_dir), "--catalogue",
                              "offers.yaml"])
    assert run.exit_code == 0, run.output
    assert seen["catalogue"] is not None and seen["catalogue"].ids == ["call_back"]
    assert runner.invoke(app, [*EVENT_TRAIN, "--data", str(sample_dir)]).exit_code == 0
    assert seen["catalogue"] is None, "without --catalogue the pipeline uses its default"


def test_train_judges_labels_against_the_declared_as_of_date(local_tracking, sample_dir,
                                                              monkeypatch):
    """`train --as-of` builds the features with the declared date as the data's end (the same
    pipeline call as without it), so a horizon ending before it counts as observed."""
    seen = {}

    def capture(fs, *args, **kwargs):
        seen["data_end"] = fs.data_end
        raise SystemExit(0)

    monkeypatch.setattr("training.pipeline.train_on_feature_set", capture)
    args = ["train", "--data", str(sample_dir), "--cutoff", "2025-07-01", "--cutoff",
            "2025-09-01"]
    assert runner.invoke(app, [*args, "--as-of", "2026-03-01"]).exit_code == 0
    assert seen["data_end"] == pd.Timestamp("2026-03-01")
    assert runner.invoke(app, args).exit_code == 0
    assert seen["data_end"] < pd.Timestamp("2026-03-01"), "without --as-of: the latest event"


def test_train_hands_the_readouts_to_the_pipeline_and_names_a_bad_one(local_tracking, sample_dir,
                                                                     monkeypatch):
    seen = {}

    def capture(*args, readouts=None, **kwargs):
        seen["readouts"] = readouts
        raise SystemExit(0)

    monkeypatch.setattr("training.pipeline.train_on_events", capture)
    pd.DataFrame({"offer_id": ["discount_10"], "verdict": ["disproven"], "realised_cut": [-0.01],
                  "ci_low": [-0.03], "ci_high": [0.01]}).to_csv("evidence.csv", index=False)
    args = ["train", "--data", str(sample_dir), "--cutoff", "2025-07-01", "--cutoff", "2025-09-01"]
    assert runner.invoke(app, [*args, "--readouts", "evidence.csv"]).exit_code == 0
    assert seen["readouts"]["verdict"].tolist() == ["disproven"]
    pd.DataFrame({"offer_id": ["discount_10"]}).to_csv("plan.csv", index=False)
    seen.clear()
    run = runner.invoke(app, [*args, "--readouts", "plan.csv"])
    assert run.exit_code == 2 and "not a readout's evidence table" in run.output, run.output
    assert not seen, "the pipeline ran on a bad readout"


# --- issue #17: no label from the future, nothing trained without MLflow ----------------------

def _sample_with_a_2099_order(sample_dir: Path, folder: Path) -> Path:
    import shutil

    shutil.copytree(sample_dir, folder, ignore=shutil.ignore_patterns("_truth"))
    orders = pd.read_parquet(folder / "orders.parquet")
    extra = orders.iloc[[0]].assign(order_ts=pd.Timestamp("2099-01-01"), order_id="o-2099")
    pd.concat([orders, extra], ignore_index=True).to_parquet(folder / "orders.parquet",
                                                             index=False)
    return folder


def test_train_refuses_an_order_from_2099_and_registers_nothing(local_tracking, sample_dir):
    """The issue's case: the 2099 order used to label the latest cutoff (40% churn), make it the
    hold-out and register a challenger on it."""
    crm = _sample_with_a_2099_order(sample_dir, local_tracking / "crm")
    run = runner.invoke(app, ["train", "--data", str(crm), "--cutoff", "2025-04-01", "--cutoff",
                              "2025-07-01", "--cutoff", "2025-10-01", "--cutoff", "2025-12-01"])
    assert run.exit_code == 2, run.output
    assert "orders.order_ts: timestamps in the future" in run.output, run.output
    assert "2099-01-01" in run.output
    assert not (local_tracking / "mlflow.db").exists(), "a run or a model was recorded"


def test_train_on_an_empty_population_is_a_named_error(local_tracking, sample_dir):
    run = runner.invoke(app, ["train", "--data", str(sample_dir), "--cutoff", "2020-01-01",
                              "--cutoff", "2020-06-01"])
    assert run.exit_code == 2, run.output
    assert "no customer is in the population at any cutoff" in run.output, run.output


@pytest.mark.parametrize("command", ["events", "table", "promote"])
def test_train_fails_in_one_line_when_mlflow_is_unreachable(tmp_path, sample_dir, command):
    """A real closed loopback port, through the real command: one line naming the server, exit 1
    (the job failed; the input is fine), no traceback, no minutes of retries."""
    import sys

    from tests.ports import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # bound then released: nothing listens there
    table = tmp_path / "customers.csv"
    pd.DataFrame({"id": range(200), "x": np.arange(200) % 7, "churned": np.arange(200) % 2}) \
        .to_csv(table, index=False)
    args = {"events": ["train", "--data", str(sample_dir), "--cutoff", "2025-01-01", "--cutoff",
                       "2025-04-01"],
            "table": ["train", "--table", str(table), "--id", "id", "--label", "churned"],
            "promote": ["promote"]}[command]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        env.pop(name, None)  # the command's own bounds, not ones this test process set
    result = subprocess.run([sys.executable, "-c", "from churn.cli import main; main()", *args],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: the MLflow tracking server {uri} is unreachable "
                               "(connection refused)"), lines[0]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


# --- errors: bad input is the user's, anything else is our bug --------------------------------

def _generate_raises(monkeypatch, exc: BaseException) -> None:
    """`churn data generate` hits ``exc`` inside the library (a simulated bug or OS refusal)."""
    def broken(spec):
        raise exc

    monkeypatch.setattr("features.sample.generate", broken)


def test_an_internal_error_is_reported_as_a_bug_not_as_bad_input(tmp_path, monkeypatch):
    _generate_raises(monkeypatch, ValueError("operands could not be broadcast\nsecond line"))
    run = runner.invoke(app, ["data", "generate", "--out", str(tmp_path / "s")])
    assert run.exit_code == 70, run.output
    assert ("error: internal error (a bug): ValueError: operands could not be broadcast; run "
            "with --debug for the traceback, please report it") in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "second line" not in run.stderr
    debug = runner.invoke(app, ["--debug", "data", "generate", "--out", str(tmp_path / "s")])
    assert debug.exit_code == 70, debug.output
    assert "Traceback (most recent call last)" in debug.stderr and "def broken" not in debug.stderr
    assert "in broken" in debug.stderr, "the traceback reaches the failing frame"


def test_bad_input_is_exit_2_and_shows_a_traceback_only_under_debug(tmp_path):
    args = ["data", "generate", "--customers", "0", "--out", str(tmp_path / "s")]
    run = runner.invoke(app, args)
    assert run.exit_code == 2 and "error: --customers must be at least 1" in run.stderr, run.output
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "Traceback" in runner.invoke(app, ["--debug", *args]).stderr


def test_materialize_refuses_a_customer_column_named_as_a_feature_and_writes_nothing(tmp_path,
                                                                                    tiny):
    """A customers column named as a built feature would give the store a name twice: the
    command names the column (bad input, exit 2; it was "internal error (a bug)", exit 70) and
    leaves no store file."""
    from tests.conftest import write_tables

    tiny["customers"]["tenure_days"] = 1.0
    src = write_tables(tiny, tmp_path / "crm")
    store = tmp_path / "store" / "online.sqlite"
    run = runner.invoke(app, ["features", "materialize", "--data", str(src), "--cutoff",
                              "2024-04-01", "--store", str(store)])
    assert run.exit_code == 2, run.output
    assert "customers.tenure_days" in run.stderr and "internal error" not in run.stderr, run.stderr
    assert not store.exists() and (not store.parent.exists() or not any(store.parent.iterdir()))


def test_every_domain_error_is_bad_input():
    from churn.settings import SettingsError
    from features.btyd.base import BtydFitError
    from features.contract import ContractError
    from features.errors import BadInput
    from features.store import StoreError
    from jobs.batch_output import BatchError
    from jobs.storage import StorageError
    from scoring.offers.catalogue import CatalogueError
    from scoring.offers.design import CampaignError
    from scoring.scorer import ScoringInputError
    from serving.settings import ServeSettingsError
    from training.dataset import TrainingInputError

    for error in (ContractError, StorageError, BatchError, TrainingInputError, StoreError,
                  BtydFitError, SettingsError, ScoringInputError, CatalogueError,
                  ServeSettingsError, CampaignError):
        assert issubclass(error, BadInput), error


def test_an_os_refusal_names_the_path_and_the_reason(tmp_path, monkeypatch):
    import errno

    _generate_raises(monkeypatch, PermissionError(errno.EACCES, "Permission denied",
                                                  "/srv/crm/orders.parquet"))
    run = runner.invoke(app, ["data", "generate", "--out", str(tmp_path / "s")])
    assert run.exit_code == 74, run.output
    assert "error: I/O error on /srv/crm/orders.parquet: Permission denied" in run.stderr, run.stderr


def test_a_missing_input_file_is_bad_input(tmp_path):
    run = runner.invoke(app, ["train", "--table", str(tmp_path / "nope.parquet"), "--id", "a",
                              "--label", "b"])
    assert run.exit_code == 2, run.output
    assert "nope.parquet" in run.stderr and "internal error" not in run.stderr


# --- version and choices ------------------------------------------------------------------------

def test_version_comes_from_the_package_metadata():
    import tomllib
    from importlib.metadata import version

    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    run = runner.invoke(app, ["--version"])
    assert run.exit_code == 0, run.output
    assert run.stdout.strip() == f"{name} {version(name)}"


@pytest.mark.parametrize("args, option, choices", [
    (["features", "build", "--engine", "spork"], "--engine", ("local", "spark")),
    (["features", "build", "--definition", "sometimes"], "--definition",
     ("noncontractual", "contractual")),
    (["train", "--definition", "sometimes"], "--definition", ("noncontractual", "contractual")),
], ids=["engine", "definition", "train definition"])
def test_choices_are_listed_in_help_and_a_wrong_one_is_a_usage_error(tmp_path, args, option,
                                                                     choices):
    command = args[:2] if args[0] == "features" else args[:1]
    base = ["--data", str(tmp_path), "--cutoff", "2025-01-01", "--out", str(tmp_path / "o.parquet")]
    run = runner.invoke(app, [*args, *(base if args[0] == "features" else [])])
    assert run.exit_code == 2, run.output
    assert f"Invalid value for '{option}'" in run.stderr, run.stderr
    assert all(repr(c) in run.stderr for c in choices), run.stderr
    assert not (tmp_path / "o.parquet").exists()
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert "|".join(choices) in shown.stdout, shown.stdout


# --- progress bars and summary lines ------------------------------------------------------------

SMALL_SAMPLE = ["data", "generate", "--customers", "300", "--months", "6"]


def test_progress_shows_when_forced_and_a_summary_line_ends_the_job(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_PROGRESS", "1")  # stderr is not a terminal under the runner
    run = runner.invoke(app, [*SMALL_SAMPLE, "--out", str(tmp_path / "s")])
    assert run.exit_code == 0, run.output
    assert "simulating the sample CRM" in run.stderr and "6/6" in run.stderr, run.stderr
    assert "writing the sample CRM" in run.stderr
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (tmp_path / "s").rglob("*.parquet"))
    summary = [line for line in run.stderr.splitlines() if line.startswith("data generate:")]
    assert len(summary) == 1, run.stderr
    assert f"data generate: {rows:,} rows in " in summary[0] and "peak memory" in summary[0]
    assert "simulating" not in run.stdout and "data generate:" not in run.stdout, \
        "bars and summaries go to stderr, results to stdout"


def test_no_bars_on_a_non_terminal_and_nothing_on_stderr_with_quiet(tmp_path, monkeypatch):
    monkeypatch.delenv("CHURN_PROGRESS", raising=False)
    plain = runner.invoke(app, [*SMALL_SAMPLE, "--out", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert "simulating" not in plain.stderr and "data generate:" in plain.stderr
    monkeypatch.setenv("CHURN_PROGRESS", "1")
    quiet = runner.invoke(app, ["--quiet", *SMALL_SAMPLE, "--out", str(tmp_path / "b")])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "", quiet.stderr
    assert "wrote" in quiet.stdout


def test_feature_build_and_training_show_progress(tmp_path, sample_dir, local_tracking,
                                                  monkeypatch):
    monkeypatch.setenv("CHURN_PROGRESS", "1")
    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--data", str(sample_dir), "--cutoff",
                              "2025-01-01", "--cutoff", "2025-04-01", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "building features" in run.stderr and "2/2" in run.stderr, run.stderr
    rows = pq.ParquetFile(out).metadata.num_rows
    assert f"features build (local): {rows:,} rows in " in run.stderr, run.stderr
    _customers(400, seed=0).to_parquet(tmp_path / "train.parquet", index=False)
    trained = runner.invoke(app, ["train", "--table", str(tmp_path / "train.parquet"), "--id",
                                  "cid", "--label", "churned", "--tune-trials", "2"])
    assert trained.exit_code == 0, trained.output
    assert "tuning" in trained.stderr and "2/2" in trained.stderr, trained.stderr
    assert "training" in trained.stderr and "calibration" in trained.stderr, trained.stderr
    assert [line for line in trained.stderr.splitlines() if line.startswith("train: ")]


@pytest.mark.slow
def test_the_spark_feature_build_shows_its_tasks(tmp_path, sample_dir, monkeypatch):
    monkeypatch.setenv("CHURN_PROGRESS", "1")
    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--engine", "spark", "--spark-master",
                              "local[2]", "--spark-buckets", "4", "--data", str(sample_dir),
                              "--cutoff", "2025-01-01", "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "building features on Spark" in run.stderr and "task" in run.stderr, run.stderr[-3000:]
    rows = pq.ParquetFile(out).metadata.num_rows
    assert f"features build (spark): {rows:,} rows in " in run.stderr


@pytest.mark.parametrize("workers", ["0", "65", "two"])
def test_a_bad_worker_count_in_the_settings_file_is_refused(tmp_path, sample_dir, workers):
    (tmp_path / "churn.yaml").write_text(f"parallel: {{workers: {workers}}}\n")
    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--data", str(sample_dir), "--cutoff",
                              "2025-01-01", "--out", str(out),
                              "--config", str(tmp_path / "churn.yaml")])
    assert run.exit_code == 2, run.output
    assert "churn.yaml: parallel.workers" in run.output, run.output
    assert not out.exists()


def test_the_settings_files_worker_count_runs_the_build(tmp_path, caplog):
    """``parallel.workers`` reaches the feature build: two workers build the parts two at a time
    and write what one worker writes."""
    import logging

    data = tmp_path / "crm"
    run = runner.invoke(app, ["data", "generate", "--out", str(data), "--customers", "1500",
                              "--months", "8", "--partitioned", "--block", "500"])
    assert run.exit_code == 0, run.output
    frames = {}
    for workers in (1, 2):
        (tmp_path / "churn.yaml").write_text(f"parallel: {{workers: {workers}}}\n")
        out = tmp_path / f"fs{workers}.parquet"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="features.stream"):
            run = runner.invoke(app, ["features", "build", "--data", str(data), "--cutoff",
                                      "2024-06-01", "--out", str(out),
                                      "--config", str(tmp_path / "churn.yaml")])
        assert run.exit_code == 0, run.output
        assert f"from 3 partitions ({workers} at a time)" in caplog.text, caplog.text
        if workers == 2:  # the summary's peak memory counts the workers too
            assert "(largest child process " in run.stderr, run.stderr
        frames[workers] = pd.read_parquet(out)
    assert len(frames[1]) > 0
    pd.testing.assert_frame_equal(frames[1], frames[2])

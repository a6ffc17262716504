"""The `churn` command as a user meets it, and the README's `make demo`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command():
    run = runner.invoke(app, ["--help"])
    assert run.exit_code == 0
    for command in ("data", "features", "train", "promote", "score", "demo"):
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
], ids=["bad date", "bad definition", "no source", "one cutoff", "table without id"])
def test_bad_arguments_are_named(tmp_path, sample_dir, args, words):
    args = [str(sample_dir) if a == "X" else a for a in args]
    if "t.csv" in args:
        (tmp_path / "t.csv").write_text("a,b\n1,2\n")
        args = [str(tmp_path / "t.csv") if a == "t.csv" else a for a in args]
    run = runner.invoke(app, args)
    assert run.exit_code == 2, run.output
    assert words in run.output, run.output


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
    result = subprocess.run(["make", "-C", str(ROOT), "demo", f"DEMO_DIR={tmp_path}/demo"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("generating a sample CRM", "checking the data contract", "point-in-time features",
                 "training a calibrated LightGBM", "LightGBM (calibrated)", "logistic_rfm",
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

"""The batch job: rows in = rows out + quarantined, atomic outputs, kill and rerun, the budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()


@pytest.fixture
def env(served_workdir):
    return served_workdir


def _table(served) -> pd.DataFrame:
    return served["features"].frame.drop(columns=["label"]).reset_index(drop=True)


def _score(*args):
    return runner.invoke(app, ["score", "--no-track", *map(str, args)])


def test_rows_in_equal_rows_out_plus_quarantined(env, served):
    table = _table(served)
    table["recency_days"] = table["recency_days"].astype(float)
    table.loc[[3, 10], "recency_days"] = np.inf
    table["customer_id"] = table["customer_id"].astype(object)
    table.loc[7, "customer_id"] = None
    table.loc[12, "plan"] = "platinum"  # a category never seen in training
    table.to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--unknown-category", "quarantine", "--chunk-size", 500)
    assert run.exit_code == 0, run.output
    scored = pd.read_parquet(env / "scored.parquet")
    quarantine = pd.read_parquet(env / "scored.quarantine.parquet")
    manifest = json.loads((env / "scored.manifest.json").read_text())
    assert len(table) == len(scored) + len(quarantine) == manifest["rows_in"]
    assert manifest["rows_out"] == len(scored) and manifest["rows_quarantined"] == 4
    reasons = set(quarantine["reason"])
    assert reasons == {"a feature is infinite", "customer_id is missing",
                       "unknown category in plan"}, reasons
    assert list(scored.columns) == ["customer_id", "churn_probability", "risk_band", "reasons",
                                    "offer_id", "offer_expected_net_value",
                                    "offer_churn_reduction", "model_name", "model_version",
                                    "cutoff", "scored_at"]
    assert scored["churn_probability"].between(0, 1).all()
    assert scored["risk_band"].isin(["low", "medium", "high"]).all()
    assert all(isinstance(json.loads(r), list) for r in scored["reasons"].head(50))
    assert manifest["model_version"] == served["version"]


def test_too_many_bad_rows_fail_the_job_and_write_nothing(env, served):
    table = _table(served)
    table["recency_days"] = table["recency_days"].astype(float)
    table.loc[: len(table) // 10, "recency_days"] = np.inf
    table.to_csv(env / "features.csv", index=False)
    run = _score("--features", env / "features.csv", "--out", env / "scored.csv")
    assert run.exit_code == 2, run.output
    assert "cannot be scored" in run.output and "a feature is infinite" in run.output
    assert sorted(p.name for p in env.iterdir()) == ["features.csv"], "something was written"


def test_the_campaign_budget_is_respected_on_the_scored_output(env, served):
    _table(served).to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--campaign-budget", 300)
    assert run.exit_code == 0, run.output
    scored = pd.read_parquet(env / "scored.parquet")
    from scoring.offers.catalogue import load_catalogue

    cost = {o.id: o.cost for o in load_catalogue().offers}
    spend = scored.loc[scored["offer_id"] != "", "offer_id"].map(cost).sum()
    assert 0 < spend <= 300
    assert (scored.loc[scored["offer_id"] != "", "offer_expected_net_value"] > 0).all()


@pytest.mark.parametrize("args,words", [
    ([], "either --features"),
    (["--data", "x"], "--cutoff"),
    (["--features", "missing.parquet"], "does not exist"),
    (["--features", "f.parquet", "--engine", "gpu"], "--engine"),
], ids=["no input", "data without cutoff", "missing file", "bad engine"])
def test_bad_arguments_exit_2(env, args, words):
    run = _score(*args, "--out", env / "o.parquet")
    assert run.exit_code == 2 and words in run.output, run.output


@pytest.mark.slow
def test_a_killed_job_never_leaves_a_partial_file_and_a_rerun_is_complete(env, served):
    big = pd.concat([_table(served)] * 40, ignore_index=True)
    big["customer_id"] = [f"K{i:07d}" for i in range(len(big))]
    big.to_parquet(env / "big.parquet", index=False)
    churn = Path(sys.executable).parent / "churn"
    cmd = [str(churn), "score", "--no-track", "--features", str(env / "big.parquet"), "--out",
           str(env / "out.parquet"), "--chunk-size", "2000", "--campaign-budget", "5000"]
    reference = subprocess.run(cmd[:-4] + ["--out", str(env / "ref.parquet"), "--chunk-size",
                                           "2000", "--campaign-budget", "5000"],
                               capture_output=True, text=True, env=os.environ, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=os.environ, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(1.0, 5.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        final = env / "out.parquet"
        if final.exists():  # finished before the kill: then it must be whole
            assert len(pd.read_parquet(final)) == len(big)
            final.unlink()
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    got = pd.read_parquet(env / "out.parquet").drop(columns=["scored_at"])
    want = pd.read_parquet(env / "ref.parquet").drop(columns=["scored_at"])
    pd.testing.assert_frame_equal(got, want)
    leftovers = [p.name for p in env.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_reasons_can_be_limited_to_the_riskier_customers(env, served):
    _table(served).to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--reasons-for", "high")
    assert run.exit_code == 0, run.output
    scored = pd.read_parquet(env / "scored.parquet")
    high = scored["risk_band"] == "high"
    assert high.any() and (~high).any()
    assert (scored.loc[~high, "reasons"] == "[]").all()
    assert (scored.loc[high, "reasons"] != "[]").all()


def test_the_summary_sums_the_written_rows(env, served):
    """The manifest's summary is the sum over the rows written (no per-row arrays are kept for
    it: the probabilities are read back from the stage): expected churners, offers, spend and
    net value, to the last bit, with a budget and chunks smaller than the table."""
    from scoring.offers.catalogue import load_catalogue

    _table(served).to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--campaign-budget", 300, "--chunk-size", 333)
    assert run.exit_code == 0, run.output
    scored = pd.read_parquet(env / "scored.parquet")
    summary = json.loads((env / "scored.manifest.json").read_text())["summary"]
    cost = {o.id: o.cost for o in load_catalogue().offers}
    sent = scored.loc[scored["offer_id"] != "", "offer_id"]
    assert len(sent) and summary["offers"] == {o: int((sent == o).sum()) for o in cost}
    assert summary["expected_churners"] == float(scored["churn_probability"].to_numpy().sum())
    assert summary["expected_net_value"] == float(
        scored["offer_expected_net_value"].to_numpy().sum())
    assert summary["spend"] == float(sent.map(cost).to_numpy().sum())


def test_a_chunk_scored_in_blocks_gets_the_values_of_the_whole_chunk(env, served):
    """The job scores each chunk a few thousand rows at a time: every row's probability, band,
    reasons and offer values are those of the whole chunk scored at once, bit for bit."""
    from jobs.batch import score_chunk
    from jobs.runner import load_model
    from scoring.core import ScoringCore
    from scoring.offers.catalogue import load_catalogue

    model = load_model("models:/churn@champion")
    core = ScoringCore(model, load_catalogue())
    x = np.asfortranarray(model.scorer.matrix(_table(served)))
    whole, opts = score_chunk(core, x, 3, block=len(x))
    for block in (7, 250):
        got, o = score_chunk(core, x, 3, block=block)
        assert got.keys() == whole.keys()
        for key, values in whole.items():
            assert np.array_equal(got[key], values), (block, key)
        for a, b in ((o.net, opts.net), (o.reduction, opts.reduction), (o.cooling, opts.cooling)):
            assert a.shape == b.shape and np.array_equal(a, b), block

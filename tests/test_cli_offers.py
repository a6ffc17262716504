"""`churn offers plan` and `churn offers readout` from the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()


def _outcomes(tmp_path, change=lambda f: f, name="outcomes.csv"):
    rng = np.random.default_rng(0)
    n = 400
    treated = rng.random(n) < 0.5
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)],
                          "sent_ts": "2026-01-05", "offer_id": "discount_10", "treated": treated,
                          "outcome": (rng.random(n) < 0.3 - 0.15 * treated).astype(int),
                          "predicted_churn_cut": 0.1, "customer_value": 80.0})
    path = tmp_path / name
    change(frame).to_csv(path, index=False)
    return path


def test_readout_of_outcomes_writes_the_evidence_and_a_report(tmp_path):
    out, report = tmp_path / "evidence.parquet", tmp_path / "readout.html"
    run = runner.invoke(app, ["offers", "readout", "--outcomes", str(_outcomes(tmp_path)),
                              "--out", str(out), "--report", str(report)])
    assert run.exit_code == 0, run.output
    assert "discount_10: proven: churn cut +" in run.output and "predicted +0.100" in run.output
    evidence = pd.read_parquet(out)
    assert evidence.loc[0, "verdict"] == "proven"
    assert evidence.loc[0, "ci_low"] <= 0.15 <= evidence.loc[0, "ci_high"], "the true cut"
    assert "Campaign readout" in report.read_text() and "Predicted vs realised cut" in report.read_text()


@pytest.mark.parametrize("change,words", [
    (lambda f: f.drop(columns="treated"), "no column treated (the hold-out flag"),
    (lambda f: f.assign(treated=True), "no hold-out for discount_10 (400 treated, 0 held out)"),
    (lambda f: f.assign(offer_id="free_phone"), "offers unknown to the catalogue: ['free_phone']"),
])
def test_bad_outcome_tables_exit_2_naming_the_problem(tmp_path, change, words):
    out = tmp_path / "evidence.csv"
    run = runner.invoke(app, ["offers", "readout", "--outcomes", str(_outcomes(tmp_path, change)),
                              "--out", str(out)])
    assert run.exit_code == 2, run.output
    assert words in run.stderr, run.stderr
    assert not out.exists(), "nothing is written on bad input"


def test_readout_needs_one_source_of_outcomes(tmp_path):
    run = runner.invoke(app, ["offers", "readout"])
    assert run.exit_code == 2 and "--outcomes" in run.stderr


def test_a_past_campaign_of_the_sample_is_read_from_the_crm_data(tmp_path, sample_dir):
    """The sample's campaigns are randomised (20% held out): one is read from the raw data, and
    one too recent for its outcomes to be known is refused."""
    offers = pd.read_parquet(sample_dir / "offers.parquet")
    days = sorted(offers["sent_ts"].dt.normalize().unique())
    for day, code in ((days[2], 0), (days[-1], 2)):
        campaign = tmp_path / f"campaign-{pd.Timestamp(day).date()}.parquet"
        offers[offers["sent_ts"].dt.normalize() == day].to_parquet(campaign)
        run = runner.invoke(app, ["offers", "readout", "--campaign", str(campaign), "--data",
                                  str(sample_dir)])
        assert run.exit_code == code, run.output
        if code == 0:
            assert all(f"{o}: " in run.output for o in ("discount_10", "service_call",
                                                         "loyalty_bonus"))
        else:
            assert "have not matured" in run.stderr


@pytest.mark.slow
def test_plan_keeps_hold_outs_records_the_seed_and_judges_the_policies(local_tracking,
                                                                       sample_dir):
    fast = local_tracking / "fast.yaml"  # a quick model: the plan, not the model, is tested
    fast.write_text("training:\n  cv_folds: 2\n  linear_candidate: false\n  lightgbm:\n"
                    "    learning_rate: 0.2\n    max_rounds: 200\n    early_stopping_rounds: 20\n")
    trained = runner.invoke(app, ["train", "--data", str(sample_dir), "--cutoff", "2025-01-01",
                                  "--cutoff", "2025-04-01", "--config", str(fast)])
    assert trained.exit_code == 0, trained.output
    out = local_tracking / "plan.parquet"
    args = ["offers", "plan", "--model", "models:/churn/1", "--data", str(sample_dir),
            "--budget", "3000", "--seed", "17"]
    run = runner.invoke(app, [*args, "--out", str(out)])
    assert run.exit_code == 0, run.output
    plan = pd.read_parquet(out)
    assert (plan["assignment_seed"] == 17).all() and "assignment seed 17" in run.output
    for oid, g in plan.groupby("offer_id"):
        assert (~g["treated"]).sum() > 0, f"{oid} has no hold-out"
    assert plan["cost"].sum() <= 3000
    assert "can prove a cut of" in run.output
    assert "policies judged on" in run.output
    for policy in ("current", "risk-only", "no offer"):
        assert f"  {policy}" in run.output
    again = local_tracking / "again.parquet"
    rerun = runner.invoke(app, [*args, "--out", str(again), "--no-track"])
    assert rerun.exit_code == 0, rerun.output
    pd.testing.assert_frame_equal(plan, pd.read_parquet(again))

    import mlflow

    runs = mlflow.search_runs(experiment_names=["churn-campaigns"])
    assert len(runs) == 1 and runs["params.assignment_seed"].iloc[0] == "17"
    assert "metrics.ope.current.dr.value" in runs.columns


@pytest.mark.parametrize("extra,words", [
    (["--out", "plan.txt"], "--out must end in .parquet or .csv"),
    (["--out", "plan.csv", "--min-effect", "0"], "--min-effect"),
    (["--out", "plan.csv", "--power", "1.5"], "--power"),
    (["--out", "plan.csv", "--risk-offer", "free_phone"], "'free_phone' is not in the catalogue"),
])
def test_plan_refuses_bad_options_before_it_starts(tmp_path, sample_dir, extra, words):
    run = runner.invoke(app, ["offers", "plan", "--data", str(sample_dir), "--budget", "100",
                              "--no-track", *[str(tmp_path / e) if e.startswith("plan.") else e
                                              for e in extra]])
    assert run.exit_code == 2, run.output
    assert words in run.stderr, run.stderr
    assert not list(tmp_path.glob("plan.*")), "nothing is written"

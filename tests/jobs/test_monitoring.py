"""Monitoring: drift that is there is found, drift that is not is not; back-tests are right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from churn.cli import app
from jobs.monitoring import MonitorConfig, backtest, drift, psi, psi_categorical
from scoring.bands import RiskBands
from scoring.evaluation import expected_calibration_error, lift_and_capture

runner = CliRunner()


def test_psi_is_zero_for_the_same_data_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 20_000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-9)
    assert psi(x, rng.normal(0, 1, 20_000)) < 0.01
    assert psi(x, x + 0.5) > 0.15 and psi(x, x + 1.0) > psi(x, x + 0.5)
    with_missing = x.copy()
    with_missing[:4000] = np.nan
    assert psi(x, with_missing) > 0.1, "a jump in missing values must show"
    cats = pd.Series(rng.choice(["a", "b", "c"], 5000))
    assert psi_categorical(cats, cats) == pytest.approx(0.0, abs=1e-9)
    assert psi_categorical(cats, pd.Series(["a"] * 5000)) > 0.5


def _frames(n=5000, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"recency_days": rng.exponential(40, n), "orders_90d": rng.poisson(2, n),
                         "plan": rng.choice(["basic", "premium"], n)})


def test_identical_data_gives_no_alert_and_a_shift_alerts_exactly_that_feature():
    ref = _frames()
    feats, kinds = ["recency_days", "orders_90d", "plan"], ["number", "number", "category"]
    p = np.random.default_rng(2).uniform(0, 1, len(ref))
    same = drift(ref, ref.copy(), feats, kinds, p, p, RiskBands(), MonitorConfig())
    assert same.alerts == [] and same.warnings == []
    assert same.features["psi"].max() == pytest.approx(0.0, abs=1e-9)
    shifted = ref.copy()
    shifted["recency_days"] += 60
    moved = drift(ref, shifted, feats, kinds, p, p, RiskBands(), MonitorConfig())
    flagged = moved.features.loc[moved.features["status"] == "alert", "feature"].tolist()
    assert flagged == ["recency_days"], moved.features


def test_backtest_figures_match_a_direct_computation():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 3000)
    y = (rng.random(3000) < p).astype(float)
    b = backtest(y, p)
    assert b["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert b["calibration_error"] == pytest.approx(expected_calibration_error(y, p))
    assert b["lift_top10"] == pytest.approx(lift_and_capture(y, p, 0.10)[0])
    top = np.argsort(-p)[:300]
    assert b["lift_top10"] == pytest.approx(y[top].mean() / y.mean())


@pytest.fixture
def tracked(served_workdir):
    return served_workdir


@pytest.mark.slow
def test_monitor_exit_codes_and_report(tracked, served):
    from jobs.monitor import reference_frame
    from jobs.runner import load_model

    reference = reference_frame(load_model("models:/churn@champion"))
    reference.to_parquet(tracked / "same.parquet", index=False)
    run = runner.invoke(app, ["monitor", "--no-track", "--features", str(tracked / "same.parquet"),
                              "--report", str(tracked / "same.html")])
    assert run.exit_code == 0, run.output
    assert "0 alerts" in run.output and (tracked / "same.html").exists()
    shifted = reference.copy()
    shifted["recency_days"] = shifted["recency_days"] + 90
    shifted.to_parquet(tracked / "shifted.parquet", index=False)
    run = runner.invoke(app, ["monitor", "--no-track", "--features",
                              str(tracked / "shifted.parquet"), "--report",
                              str(tracked / "shifted.html")])
    assert run.exit_code == 3, run.output
    assert "ALERT feature recency_days" in run.output
    page = (tracked / "shifted.html").read_text()
    assert "ALERT" in page and "data:image/png;base64" in page


@pytest.mark.slow
def test_monitor_reads_out_a_sent_campaign_in_its_report(tracked, served):
    """`churn monitor --campaign-outcomes`: each offer's realised cut and verdict in the output
    and the report; a campaign without its hold-out flag is bad input (exit 2)."""
    from jobs.monitor import reference_frame
    from jobs.runner import load_model
    from tests.jobs.test_campaign_readout import _sent

    reference_frame(load_model("models:/churn@champion")).to_parquet(tracked / "f.parquet",
                                                                      index=False)
    _sent().to_parquet(tracked / "sent.parquet", index=False)
    args = ["monitor", "--no-track", "--features", str(tracked / "f.parquet"), "--report",
            str(tracked / "m.html")]
    run = runner.invoke(app, [*args, "--campaign-outcomes", str(tracked / "sent.parquet")])
    assert run.exit_code == 0, run.output
    for offer in ("discount_10", "loyalty_bonus"):
        assert f"campaign readout {offer}: realised cut" in run.output, run.output
    assert "Campaign readout" in (tracked / "m.html").read_text()
    _sent().drop(columns="treated").to_parquet(tracked / "bad.parquet", index=False)
    (tracked / "m.html").unlink()
    run = runner.invoke(app, [*args, "--campaign-outcomes", str(tracked / "bad.parquet")])
    assert run.exit_code == 2 and "hold-out flag" in run.output, run.output
    assert not (tracked / "m.html").exists(), "no report from a refused campaign"


@pytest.mark.slow
def test_monitor_backtest_on_matured_labels(tracked, served, sample_dir):
    scored = tracked / "scored.parquet"
    run = runner.invoke(app, ["score", "--no-track", "--data", str(sample_dir), "--cutoff",
                              "2025-06-01", "--out", str(scored)])
    assert run.exit_code == 0, run.output
    features = tracked / "features.parquet"
    assert runner.invoke(app, ["features", "build", "--data", str(sample_dir), "--cutoff",
                               "2025-06-01", "--out", str(features)]).exit_code == 0
    run = runner.invoke(app, ["monitor", "--no-track", "--features", str(features), "--scored",
                              str(scored), "--data", str(sample_dir), "--report",
                              str(tracked / "r.html")])
    assert run.exit_code in (0, 3), run.output
    assert "back-test: ROC AUC" in run.output
    from features.config import LabelConfig
    from jobs.monitor import matured_labels

    m = matured_labels(pd.read_parquet(scored), sample_dir, LabelConfig())
    direct = roc_auc_score(m["label"], m["churn_probability"])
    assert f"ROC AUC {direct:.3f}" in run.output


def test_a_scoring_whose_labels_have_not_matured_is_refused(tracked, served, sample_dir):
    scored = pd.DataFrame({"customer_id": ["C0000001"], "churn_probability": [0.2],
                           "cutoff": ["2025-12-01"]})
    from features.config import LabelConfig
    from jobs.monitor import matured_labels

    with pytest.raises(ValueError, match="not matured"):
        matured_labels(scored, sample_dir, LabelConfig())


def test_offer_backtest_compares_realised_and_expected_by_hand():
    from jobs.monitoring import offer_backtest

    scored = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "offer_id": ["d10", "d10", "d10", "d10", "", "d10"],
        "offer_expected_net_value": [10.0, 10.0, 10.0, 10.0, 0.0, 10.0],
        "offer_churn_reduction": [0.1, 0.1, 0.1, 0.1, 0.0, 0.1],
        "label": [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]})
    offers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "sent_ts": pd.to_datetime(["2025-06-10"] * 5 + ["2025-09-01"]),  # f: too late
        "offer_id": ["d10", "d10", "d10", "d10", "d10", "d10"],
        "treated": [True, True, False, False, True, True]})
    table = offer_backtest(scored, offers, pd.Timestamp("2025-06-01"), {"d10": 10.0})
    row = table.set_index("offer_id").loc["d10"]
    assert (row["treated"], row["hold_out"]) == (2, 2)  # e had no recommendation, f too late
    assert row["realised_churn_cut"] == pytest.approx(1.0)  # hold-out churned, treated stayed
    assert row["expected_churn_cut"] == pytest.approx(0.1)
    # value = (10 + 10) / 0.1 = 200; realised net = 1.0 * 200 - 10
    assert row["realised_net_per_offer"] == pytest.approx(190.0)
    assert row["expected_net_per_offer"] == pytest.approx(10.0)


def test_monitoring_data_without_the_model_features_is_refused(tracked, served):
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tracked / "other.parquet", index=False)
    run = runner.invoke(app, ["monitor", "--no-track", "--features", str(tracked / "other.parquet"),
                              "--report", str(tracked / "r.html")])
    assert run.exit_code == 2 and "none of the model's features" in run.output, run.output
    assert not (tracked / "r.html").exists()

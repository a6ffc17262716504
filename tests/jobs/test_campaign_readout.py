"""The monitoring report's campaign readout section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.monitor_report import write_report
from jobs.monitoring import MonitorConfig, campaign_readout, drift
from scoring.bands import RiskBands
from scoring.offers.catalogue import load_catalogue
from scoring.offers.design import CampaignError


def _sent(n: int = 6_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cut = rng.uniform(0, 0.2, n)
    treated = rng.random(n) < 0.8
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)],
                         "offer_id": rng.choice(["discount_10", "loyalty_bonus"], n),
                         "treated": treated, "predicted_churn_cut": cut,
                         "outcome": (rng.random(n) < 0.4 - cut * treated).astype(float),
                         "customer_value": 50.0})


def test_the_report_carries_the_readout_and_its_calibration(tmp_path):
    readout, calibration = campaign_readout(_sent(), load_catalogue())
    assert set(readout["offer_id"]) == {"discount_10", "loyalty_bonus"}
    assert (readout["ci_low"] < 0.1).all() and (readout["ci_high"] > 0.1).all(), \
        "the mean true cut (0.1) is in each interval"
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=500)})
    scores = rng.random(500)
    report = drift(ref, ref, ["x"], ["number"], scores, scores, RiskBands(), MonitorConfig())
    page = write_report(tmp_path / "m.html", "Monitoring", report, ref, ref, scores, scores,
                        MonitorConfig(), readout=readout, calibration=calibration).read_text()
    assert "Campaign readout" in page and "uplift calibration by decile" in page
    assert page.count("<tr>") > len(readout) + len(calibration)


def test_a_campaign_without_its_hold_out_flag_is_named():
    with pytest.raises(CampaignError, match="hold-out flag"):
        campaign_readout(_sent().drop(columns="treated"), load_catalogue())

"""Evaluation figures on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import EconomicsConfig
from training.metrics import by_segment, evaluate, expected_calibration_error, lift_and_capture, profit_curve

Y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=float)
S = np.array([.9, .8, .7, .6, .5, .4, .3, .2, .1, .05])


def test_lift_and_capture_by_hand():
    lift, capture = lift_and_capture(Y, S, 0.2)  # top 2: one churner of two
    assert lift == pytest.approx(0.5 / 0.3)
    assert capture == pytest.approx(1 / 3)


def test_profit_curve_by_hand():
    econ = EconomicsConfig(offer_cost=10, offer_success_rate=0.5, customer_value=100)
    curve = profit_curve(Y, S, econ)
    # top 1: one churner caught -> 0.5 * 100 - 10 = 40; top 3: two caught -> 100 - 30 = 70
    assert curve.loc[0, "profit"] == pytest.approx(40)
    assert curve.loc[2, "profit"] == pytest.approx(70)
    assert evaluate(Y, S, econ)["best_profit"] == pytest.approx(70)
    assert evaluate(Y, S, econ)["best_profit_share"] == pytest.approx(0.3)


def test_perfectly_calibrated_scores_have_no_calibration_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200_000)
    y = (rng.random(len(p)) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1


def test_metrics_know_a_good_ranking_from_a_bad_one():
    econ = EconomicsConfig()
    good, bad = evaluate(Y, S, econ), evaluate(Y, S[::-1], econ)
    assert good["roc_auc"] > bad["roc_auc"] and good["pr_auc"] > bad["pr_auc"]


def test_segments_need_enough_rows_and_both_classes():
    import pandas as pd

    frame = pd.DataFrame({"segment": ["a"] * 60 + ["b"] * 40})
    y = np.r_[np.tile([0, 1], 30), np.zeros(40)]
    out = by_segment(frame, y, np.linspace(0, 1, 100), ("segment", "absent"), EconomicsConfig())
    assert "seg.segment.a.roc_auc" in out and not any(k.startswith("seg.segment.b") for k in out)

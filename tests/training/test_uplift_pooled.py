"""The pooled effect model (one risk correction shared by every offer) and its cross-fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.numeric import sigmoid
from scoring.offers.catalogue import UpliftSettings, load_catalogue
from training.effect_fit import fit_offer, fit_pooled
from training.uplift import CampaignData, fit_uplift

TRUE_A = {0: -0.5, 1: -0.2, 2: 0.0}  # each offer's effect on the log-odds at the average customer
TRUE_INTER = {0: -0.4, 1: 0.0, 2: 0.0}  # how offer 0's effect varies with the first feature
TRUE_MAIN = np.array([0.3, -0.2])  # the risk correction the offers share


def _simulate(seed: int, n: int = 30_000, treated_share: float = 0.9):
    """Three offers, campaigns with a small hold-out each; the outcome's log-odds = offset +
    shared correction + the offer's effect if treated."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 2))
    offset = rng.normal(-1.5, 0.8, n)
    offer = rng.integers(0, 3, n)
    treated = (rng.random(n) < treated_share).astype(float)
    a = np.vectorize(TRUE_A.get)(offer)
    inter = np.vectorize(TRUE_INTER.get)(offer)
    logit = offset + 0.1 + s @ TRUE_MAIN + treated * (a + inter * s[:, 0])
    y = (rng.random(n) < sigmoid(logit)).astype(float)
    return s, offset, offer, treated, y


def test_the_pooled_model_recovers_known_effects_and_the_shared_risk_correction():
    s, offset, offer, treated, y = _simulate(1)
    settings = UpliftSettings(ridge_effect=0.0, ridge_risk=0.0)
    fit = fit_pooled(s, offer, treated, y, offset, settings,
                     {0: np.array([True, False]), 1: np.array([True, False])}, rounds=3)
    assert fit.c == pytest.approx(0.1, abs=0.1)
    assert fit.main == pytest.approx(TRUE_MAIN, abs=0.06)
    assert fit.effects[0][0] == pytest.approx(TRUE_A[0], abs=0.1)
    assert fit.effects[0][1][0] == pytest.approx(TRUE_INTER[0], abs=0.1)
    assert fit.effects[0][1][1] == 0.0, "the effect may vary only with the columns allowed"
    assert fit.effects[1][0] == pytest.approx(TRUE_A[1], abs=0.1)
    assert 2 not in fit.effects, "an offer not asked for gets no effect of its own"


def test_pooling_the_hold_outs_estimates_each_offer_better_than_one_model_per_offer():
    """With small hold-outs per offer, sharing the risk correction (every offer's hold-out tells
    what happens without an offer) gives a smaller error on the offers' average effects than
    fitting each offer on its own rows, over several simulated samples."""
    settings = UpliftSettings(ridge_effect=0.0, ridge_risk=1.0)
    cols = np.array([True, False])
    pooled_err, alone_err = [], []
    for seed in range(6):
        s, offset, offer, treated, y = _simulate(10 + seed, n=12_000, treated_share=0.92)
        fit = fit_pooled(s, offer, treated, y, offset, settings, {0: cols, 1: cols})
        for j in (0, 1):
            rows = offer == j
            alone = fit_offer(s[rows], treated[rows], y[rows], offset[rows], settings, cols)[2]
            pooled_err.append((fit.effects[j][0] - TRUE_A[j]) ** 2)
            alone_err.append((alone - TRUE_A[j]) ** 2)
    assert np.mean(pooled_err) < 0.8 * np.mean(alone_err), (np.mean(pooled_err), np.mean(alone_err))


def _campaign_frame(x: np.ndarray, p: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(x)
    offer = np.array(["discount_10", "loyalty_bonus"])[rng.integers(0, 2, n)]
    treated = rng.random(n) < 0.7
    y = (rng.random(n) < np.where((offer == "discount_10") & treated, 0.6 * p, p)).astype(float)
    campaign = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 3, n) * 91, unit="D")
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "campaign": campaign,
                         "offer_id": offer, "treated": treated, "outcome": y})


@pytest.mark.parametrize("pooled", [True, False])
def test_no_campaign_row_is_predicted_by_a_model_that_saw_its_outcome(training_data, fitted,
                                                                       pooled):
    """Cross-fitting: changing one campaign's outcomes changes the final model but not one of
    that campaign's held-out effects (they come from the models fitted on the other campaigns)."""
    scorer, _ = fitted
    x = np.tile(training_data.x, (max(1, 12_000 // len(training_data.x)), 1))
    frame = _campaign_frame(x, scorer.predict(x), 3)
    catalogue = load_catalogue()
    before = fit_uplift(CampaignData(frame, x), scorer, catalogue, pooled=pooled)
    last = (frame["campaign"] == frame["campaign"].max()).to_numpy()
    changed = frame.assign(outcome=np.where(last, 1.0 - frame["outcome"], frame["outcome"]))
    after = fit_uplift(CampaignData(changed, x), scorer, catalogue, pooled=pooled)
    for offer in ("discount_10", "loyalty_bonus"):
        mine = (frame["offer_id"] == offer).to_numpy()
        b, a = before.held_out[offer], after.held_out[offer]
        assert np.isfinite(b[mine & last]).all()
        np.testing.assert_array_equal(b[mine & last], a[mine & last])
        assert not np.allclose(b[mine & ~last], a[mine & ~last]), \
            "the other campaigns' held-out effects must see the changed campaign"
    assert before.models.models["discount_10"].a != after.models.models["discount_10"].a

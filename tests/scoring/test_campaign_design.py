"""Campaign plans that can be read: power-sized hold-outs, test slices, a recorded seed."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from scoring.offers.catalogue import load_catalogue
from scoring.offers.design import (
    DISPROVEN,
    POLICY,
    PROVEN,
    TEST,
    UNKNOWN,
    CampaignError,
    DesignSettings,
    assignment_frame,
    design_campaign,
    detectable_cut,
    hold_out_size,
    offer_status,
    slice_size_per_arm,
)
from scoring.offers.policy import NO_OFFER, eligible, options
from tests.scoring.sample_truth import truth_world


@pytest.mark.parametrize("targeted,base", [(5_000, 0.10), (3_000, 0.25), (4_000, 0.40)])
def test_the_hold_out_is_the_smallest_that_detects_the_effect_worth_having(targeted, base):
    s = DesignSettings(min_effect=0.05, max_hold_out_share=0.9, min_hold_out=1)
    h = hold_out_size(targeted, base, s)
    assert detectable_cut(base, targeted - h, h, s.alpha, s.power) <= s.min_effect + 1e-9
    assert detectable_cut(base, targeted - h + 1, h - 1, s.alpha, s.power) > s.min_effect, \
        "one customer fewer in the hold-out would still detect it: not the smallest"


def test_when_no_split_can_detect_it_half_is_held_out_the_best_there_is():
    s = DesignSettings(min_effect=0.05, max_hold_out_share=0.9)
    assert hold_out_size(2_000, 0.25, s) == 1_000
    assert detectable_cut(0.25, 1_000, 1_000, s.alpha, s.power) > s.min_effect


def test_a_capped_hold_out_says_the_larger_cut_it_can_prove():
    s = DesignSettings(min_effect=0.01, max_hold_out_share=0.2)
    h = hold_out_size(1_000, 0.1, s)
    assert h == 200
    assert detectable_cut(0.1, 800, 200, s.alpha, s.power) > s.min_effect


def test_the_power_calculation_holds_in_simulated_campaigns():
    """With the computed sizes, a two-proportion test finds a true cut of min_effect in about
    ``power`` of campaigns, and a cut of zero in about ``alpha`` of them."""
    s = DesignSettings(min_effect=0.04, max_hold_out_share=0.9)
    n, base = 4_000, 0.15
    h = hold_out_size(n, base, s)
    rng = np.random.default_rng(3)
    z = NormalDist().inv_cdf(1 - s.alpha / 2)

    def found(cut: float) -> float:
        yc = rng.binomial(h, base, 4_000) / h
        yt = rng.binomial(n - h, base - cut, 4_000) / (n - h)
        se = np.sqrt(yc * (1 - yc) / h + yt * (1 - yt) / (n - h))
        return float(np.mean((yc - yt) / se > z))

    assert found(s.min_effect) == pytest.approx(s.power, abs=0.04)
    assert found(0.0) < s.alpha
    per_arm = slice_size_per_arm(base, s)
    assert detectable_cut(base, per_arm, per_arm, s.alpha, s.power) <= s.min_effect + 1e-9


@pytest.fixture(scope="module")
def world(sample_dir):
    catalogue = load_catalogue()
    w = truth_world(sample_dir, catalogue)
    c = w.customers()
    # an optimistic model (the true effects plus a 20% cut): enough customers worth an offer
    opts = options(c, {o: w.effects[:, j] - 0.2 * w.base for j, o in enumerate(catalogue.ids)},
                   catalogue)
    ok = np.column_stack([eligible(o, c) for o in catalogue.offers]) & ~opts.cooling[:, None]
    return catalogue, w, opts, ok


def _design(world, status, seed=5, **settings):
    catalogue, w, opts, ok = world
    budget = 0.3 * len(w.base) * 10.0
    return design_campaign(opts, ok, w.base, catalogue, budget, status,
                           DesignSettings(**settings), seed), budget


def test_every_offer_sent_keeps_a_random_hold_out_and_states_what_it_can_prove(world):
    catalogue, w, opts, _ = world
    status = {o: PROVEN for o in catalogue.ids}
    d, budget = _design(world, status)
    sent = d.offer[d.treated]
    assert d.treated.any() and opts.costs[sent].sum() <= budget + 1e-6
    for j, oid in enumerate(catalogue.ids):
        mine = d.offer == j
        if mine.sum() < 2:  # one customer cannot be split into two arms
            continue
        row = d.statements.set_index("offer_id").loc[oid]
        assert row["arm"] == POLICY and row["hold_out"] == (mine & ~d.treated).sum() > 0
        assert row["detectable_cut"] == pytest.approx(detectable_cut(
            row["base_rate"], row["treated"], row["hold_out"], 0.05, 0.8))
        assert "can prove a cut of" in row["statement"]
        share = (mine & ~d.treated).sum() / mine.sum()
        assert np.allclose(d.propensity[mine & ~d.treated], share)
        assert np.allclose(d.propensity[mine & d.treated], 1 - share)
    # the hold-out is random among the targeted: its predicted risk matches the treated's
    j = np.bincount(d.offer[d.selected]).argmax()
    mine = d.offer == j
    assert abs(w.base[mine & d.treated].mean() - w.base[mine & ~d.treated].mean()) < 0.05


def test_the_seed_reproduces_the_assignment_and_is_recorded(world):
    catalogue, w, opts, _ = world
    status = {o: PROVEN for o in catalogue.ids}
    a, _ = _design(world, status, seed=11)
    b, _ = _design(world, status, seed=11)
    c, _ = _design(world, status, seed=12)
    assert np.array_equal(a.treated, b.treated) and np.array_equal(a.offer, b.offer)
    assert not np.array_equal(a.treated, c.treated)
    frame = assignment_frame(a, w.ids, catalogue, opts, w.value, "c1", "2026-01-05")
    assert (frame["assignment_seed"] == 11).all() and len(frame) == a.selected.sum()
    assert set(frame.columns) >= {"customer_id", "sent_ts", "offer_id", "treated", "propensity",
                                  "arm", "predicted_churn_cut", "customer_value"}
    assert (frame.loc[~frame["treated"], "cost"] == 0).all()


def test_an_unproven_offer_gets_a_50_50_test_slice_not_the_policy_and_not_nothing(world):
    """Paid from the test share; as large as the power calculation asks at most; the slices share
    the eligible customers left."""
    catalogue, w, opts, ok = world
    status = {"discount_10": PROVEN, "service_call": UNKNOWN, "loyalty_bonus": DISPROVEN}
    d, budget = _design(world, status, test_share=0.1)
    j_unknown, j_dis = catalogue.ids.index("service_call"), catalogue.ids.index("loyalty_bonus")
    mine = d.offer == j_unknown
    assert mine.any() and set(d.arm[mine]) == {TEST}
    assert (mine & d.treated).sum() == (mine & ~d.treated).sum()
    assert np.allclose(d.propensity[mine], 0.5) and ok[mine, j_unknown].all()
    assert opts.costs[j_unknown] * (mine & d.treated).sum() <= 0.1 * budget + 1e-6
    assert (mine & d.treated).sum() <= slice_size_per_arm(0.5, DesignSettings()), \
        "never larger than a test needs (the most any base rate needs)"
    assert not (d.offer == j_dis).any(), "a disproven offer is not sent"
    row = d.statements[d.statements["offer_id"] == "service_call"].iloc[0]
    assert row["arm"] == TEST and row["status"] == UNKNOWN


def test_status_comes_from_the_learnt_models_and_readouts_win():
    sources = {"a": ("learnt", 0.7), "b": ("learnt", 0.0), "c": ("prior", 1.0)}
    assert offer_status(sources) == {"a": PROVEN, "b": UNKNOWN, "c": UNKNOWN}
    assert offer_status(sources, {"a": DISPROVEN})["a"] == DISPROVEN


def test_a_negative_budget_is_refused(world):
    catalogue, w, opts, ok = world
    with pytest.raises(CampaignError, match="budget"):
        design_campaign(opts, ok, w.base, catalogue, -1.0, {}, DesignSettings(), 1)
    assert NO_OFFER in _design(world, {})[0].offer


def test_with_nothing_proven_only_the_test_share_is_spent_where_the_offers_would_pay(world):
    catalogue, w, opts, _ = world
    d, budget = _design(world, {}, test_share=0.1)
    assert not (d.arm == POLICY).any() and set(d.statements["arm"]) == {TEST}
    sent = d.offer[d.treated]
    assert 0 < opts.costs[sent].sum() <= 0.1 * budget + 1e-6
    ok = world[3]
    for j in range(len(catalogue.ids)):
        pays = opts.net[:, j] > 0
        mine = d.offer == j
        assert mine.any()
        if (mine & ~pays).any():  # others only once no customer it would pay for is left
            assert not (ok[:, j] & pays & ~d.selected).any(), catalogue.ids[j]

"""Off-policy evaluation: estimates from logged campaigns against the true value of a policy."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from scoring.offers.catalogue import load_catalogue
from scoring.offers.design import CampaignError
from scoring.offers.ope import (
    LoggedCampaigns,
    estimate,
    judge_policies,
    logged_propensity,
)
from tests.scoring.sample_truth import draw_log, ope_world, truth_world

SEEDS = 40


@pytest.fixture(scope="module")
def world(sample_dir):
    return ope_world(truth_world(sample_dir, load_catalogue()), load_catalogue())


def _log(world, seed: int) -> LoggedCampaigns:
    return draw_log(world, seed)


def test_the_estimates_interval_holds_the_true_value_in_most_seeds(world):
    """Logged campaigns drawn from the sample's ``_truth`` with a non-uniform logging policy:
    IPS and DR 95% intervals hold each policy's true value (and its true gain over sending
    nothing) in most seeds."""
    _, _, policies, truth, _ = world
    held: dict[tuple[str, str], int] = {}
    for seed in range(SEEDS):
        table = judge_policies(_log(world, seed), policies)
        for _, r in table.iterrows():
            key = (r["policy"], r["estimator"])
            gain = truth[r["policy"]] - truth["no offer"]
            ok = r["low"] <= truth[r["policy"]] <= r["high"]
            ok &= r["policy"] == "no offer" or r["gain_low"] <= gain <= r["gain_high"]
            held[key] = held.get(key, 0) + int(ok)
    print("OPE coverage over", SEEDS, "seeds:", held)
    assert len(held) == 6
    assert all(v >= 0.85 * SEEDS for v in held.values()), held


def test_ignoring_the_propensities_gets_it_wrong(world):
    """The naive estimate (mean net value of the logged customers whose action matches the
    policy's) ignores that the log chose whom to send offers: its interval misses the
    truth in most seeds, on the same logs where IPS and DR hold it."""
    _, _, policies, truth, _ = world
    z = NormalDist().inv_cdf(0.975)
    naive_held = 0
    for seed in range(SEEDS):
        logged = _log(world, seed)
        for name in ("no offer", "risk-only"):
            match = logged.action == policies[name]
            r = logged.reward[match]
            half = z * r.std(ddof=1) / np.sqrt(len(r))
            naive_held += abs(r.mean() - truth[name]) <= half
    print("naive held", naive_held)
    assert naive_held <= 0.3 * 2 * SEEDS, f"naive held the truth {naive_held}/{2 * SEEDS} times"


def test_doubly_robust_is_narrower_than_ips_with_a_useful_reward_model(world):
    _, _, policies, _, _ = world
    logged = _log(world, 1)
    ips = estimate(logged, policies["current"], "ips")
    dr = estimate(logged, policies["current"], "dr")
    assert dr["se"] < ips["se"]


def test_uniform_campaigns_propensities_are_estimated_per_campaign(sample_crm):
    """The sample's past campaigns gave each selected customer one of three offers at random and
    held out 20%: the estimated propensities say so (0.2 held out, 0.8 / 3 per offer)."""
    offers = sample_crm.offers
    p = logged_propensity(offers)
    held = ~offers["treated"].astype(bool).to_numpy()
    assert p[held].mean() == pytest.approx(0.2, abs=0.02)
    assert p[~held].mean() == pytest.approx(0.8 / 3, abs=0.02)
    recorded = offers.assign(propensity=0.5)
    assert (logged_propensity(recorded) == 0.5).all()


def test_a_propensity_outside_0_1_is_refused():
    with pytest.raises(CampaignError, match="propensities"):
        LoggedCampaigns(np.array([0, -1]), np.array([0.5, 0.0]), np.array([1.0, 2.0]))

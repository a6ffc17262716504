"""Campaigns designed to be read: a randomised hold-out per offer, sized by a power calculation.

Every offer a plan sends keeps a randomised hold-out among the customers the policy picked for it,
so the readout compares like with like. Its size comes from a two-proportion test (two-sided,
``alpha``, ``power``) on the predicted churn rate of those customers: the smallest hold-out that
can show a cut of ``min_effect`` in churn probability, capped at ``max_hold_out_share``. The plan
says which cut each offer can prove with the hold-out it got (the *detectable cut*), and whether
that is enough for the cut the model expects.

An offer whose effect is unproven (no learnt effect, a learnt effect the held-out campaigns did
not vouch for, or a readout that left it unknown) is not sent by the policy: it gets a small
randomised *test slice* instead, half treated and half held out: the eligible customers its
assumed effect says it pays for first, then other eligible ones, no larger than the
power calculation asks for, within ``test_share`` of the budget. So it is neither dropped for ever
nor sent to everyone.

The assignment draws from one ``numpy`` generator seeded with ``seed``: the same inputs and seed
give the same assignment (an audit reruns it).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.errors import BadInput
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import Catalogue
from scoring.offers.policy import NO_OFFER, Options

POLICY, TEST = "policy", "test"  # the arms: sent by the policy, or a test slice of an unproven offer
PROVEN, DISPROVEN, UNKNOWN = "proven", "disproven", "unknown"


class CampaignError(BadInput):
    """A campaign plan, a sent campaign or its outcomes cannot be used as given."""


class DesignSettings(BaseModel):
    """How a campaign is made readable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_effect: float = Field(0.03, gt=0, lt=1, description=(
        "smallest cut in churn probability worth detecting (absolute: 0.03 = 3 points)"))
    alpha: float = Field(0.05, gt=0, lt=1, description="two-sided significance level")
    power: float = Field(0.8, gt=0, lt=1, description="chance to detect a cut of min_effect")
    max_hold_out_share: float = Field(0.5, gt=0, lt=1, description=(
        "at most this share of an offer's customers is held out"))
    min_hold_out: int = Field(30, ge=1, description="at least this many held out per offer sent")
    test_share: float = Field(0.05, ge=0, le=1, description=(
        "share of the budget paid for the test slices of unproven offers"))


def z_needed(alpha: float, power: float) -> float:
    """z_(1 - alpha/2) + z_power: the standard errors a true cut must span to be detected."""
    nd = NormalDist()
    return nd.inv_cdf(1 - alpha / 2) + nd.inv_cdf(power)


def detectable_cut(base_rate: float, treated: int, hold_out: int, alpha: float,
                   power: float) -> float:
    """Smallest cut in churn probability a two-proportion test on these arms detects with
    ``power`` (both arms' variance taken at the base rate: slightly conservative for a cut)."""
    if treated < 1 or hold_out < 1:
        return float("inf")
    p = min(max(base_rate, 1e-6), 1 - 1e-6)
    return z_needed(alpha, power) * float(np.sqrt(p * (1 - p) * (1 / treated + 1 / hold_out)))


def hold_out_size(targeted: int, base_rate: float, settings: DesignSettings) -> int:
    """The smallest hold-out of ``targeted`` customers that detects ``min_effect``, within
    ``[min_hold_out, max_hold_out_share x targeted]`` (the cap wins: the statement then says the
    larger cut it can prove). When no split detects it, half (or the cap): the best there is."""
    if targeted < 2:
        return 0
    p = min(max(base_rate, 1e-6), 1 - 1e-6)
    k = (settings.min_effect / (z_needed(settings.alpha, settings.power))) ** 2 / (p * (1 - p))
    cap = int(np.floor(settings.max_hold_out_share * targeted))
    # 1/(N - h) + 1/h <= k  <=>  k h^2 - k N h + N <= 0; smallest root, if any
    disc = 1 - 4 / (k * targeted)
    # none: half of them gives the smallest detectable cut there is
    need = targeted // 2 if disc < 0 else int(np.ceil(targeted / 2 * (1 - np.sqrt(disc))))
    return int(max(1, min(max(need, settings.min_hold_out), cap)))


def slice_size_per_arm(base_rate: float, settings: DesignSettings) -> int:
    """Customers per arm of a 50/50 test that detects ``min_effect``."""
    p = min(max(base_rate, 1e-6), 1 - 1e-6)
    return int(np.ceil(2 * p * (1 - p) * (z_needed(settings.alpha, settings.power)
                                          / settings.min_effect) ** 2))


@dataclass(frozen=True)
class CampaignDesign:
    """Who gets what: per customer (positions of the scored base) the offer index, whether it is
    sent (``treated``; False = held out), the arm, and the probability of what they got."""

    offer: np.ndarray  # offer index, NO_OFFER when not in the campaign
    treated: np.ndarray  # bool
    arm: np.ndarray  # POLICY, TEST or "" (not in the campaign)
    propensity: np.ndarray  # probability of the logged action (the offer if treated, else none)
    statements: pd.DataFrame  # one row per offer: sizes, power, what it can and cannot prove
    seed: int
    settings: DesignSettings

    @property
    def selected(self) -> np.ndarray:
        return self.offer != NO_OFFER


def _statement(offer_id: str, arm: str, status: str, targeted: np.ndarray, hold: np.ndarray,
               p: np.ndarray, cut: np.ndarray, settings: DesignSettings) -> dict:
    n_t, n_c = int((targeted & ~hold).sum()), int((targeted & hold).sum())
    base = float(p[targeted].mean()) if targeted.any() else float("nan")
    expected = float(cut[targeted].mean()) if targeted.any() else float("nan")
    mde = detectable_cut(base, n_t, n_c, settings.alpha, settings.power)
    if not np.isfinite(mde):
        text = "nothing to read: no customer in one of the arms"
    else:
        worth = ("can" if mde <= settings.min_effect + 1e-12 else "cannot")
        text = (f"can prove a cut of {mde:.3f} or more (alpha {settings.alpha:g}, power "
                f"{settings.power:.0%}); {worth} prove the smallest cut worth having "
                f"({settings.min_effect:.3f}); cannot prove smaller cuts")
        if np.isfinite(expected) and arm == POLICY:
            text += (f"; the model expects {expected:.3f}: "
                     + ("provable" if expected >= mde else "too small to prove here"))
    return {"offer_id": offer_id, "arm": arm, "status": status, "targeted": int(targeted.sum()),
            "treated": n_t, "hold_out": n_c, "hold_out_share": n_c / max(int(targeted.sum()), 1),
            "base_rate": base, "expected_cut": expected, "detectable_cut": mde,
            "min_effect": settings.min_effect, "statement": text}


def design_campaign(opts: Options, eligible: np.ndarray, p_churn: np.ndarray,
                    catalogue: Catalogue, budget: float, status: dict[str, str],
                    settings: DesignSettings, seed: int, method: str = "greedy") -> CampaignDesign:
    """Allocate the budget to the proven offers (less the test slices' share), hold out a
    power-sized random share of each offer's customers, and give each unproven offer a 50/50 test
    slice of eligible customers the policy left alone.

    ``eligible``: (customers x offers) who may get each offer (eligibility and cool-down);
    ``status``: offer id -> PROVEN, DISPROVEN or UNKNOWN (missing = UNKNOWN)."""
    if budget < 0:
        raise CampaignError("the campaign budget must be zero or more")
    n, m = opts.net.shape
    if eligible.shape != (n, m):
        raise ValueError(f"eligible is {eligible.shape}, the options are {(n, m)}")
    rng = np.random.default_rng(seed)
    ids = catalogue.ids
    state = [status.get(o, UNKNOWN) for o in ids]
    unproven = np.array([s == UNKNOWN for s in state])
    test_budget = settings.test_share * budget if unproven.any() else 0.0
    net = np.where(np.array([s == PROVEN for s in state])[None, :], opts.net, -np.inf)
    policy_opts = Options(net, opts.reduction, opts.costs, opts.cooling)
    plan = allocate(policy_opts, catalogue, budget - test_budget, method)
    offer = plan.offer.copy()
    treated = offer != NO_OFFER
    arm = np.where(treated, POLICY, "").astype(object)
    propensity = np.ones(n)
    p = np.asarray(p_churn, dtype=float)
    rows = []
    for j, oid in enumerate(ids):
        targeted = offer == j
        if targeted.sum() == 1:  # one customer cannot be split into two arms: not sent
            offer[targeted], treated[targeted], arm[targeted] = NO_OFFER, False, ""
            rows.append({"offer_id": oid, "arm": POLICY, "status": state[j], "targeted": 0,
                         "treated": 0, "hold_out": 0, "statement": "the policy picked one "
                         "customer: too few to hold any out, not sent"})
            continue
        k = hold_out_size(int(targeted.sum()), float(p[targeted].mean()) if targeted.any() else 0,
                          settings)
        idx = np.flatnonzero(targeted)
        hold = np.zeros(n, dtype=bool)
        hold[rng.choice(idx, size=k, replace=False) if k else []] = True
        treated[hold] = False
        share = k / max(len(idx), 1)
        propensity[idx] = np.where(hold[idx], share, 1 - share)
        if len(idx):
            rows.append(_statement(oid, POLICY, state[j], targeted, hold, p, opts.reduction[:, j],
                                   settings))
    # test slices: unproven offers, the cheapest to read first, each within its share of the budget
    slices = [j for j in np.argsort(opts.costs, kind="stable") if unproven[j]]
    for done, j in enumerate(slices):
        oid = ids[j]
        free = np.flatnonzero(eligible[:, j] & (offer == NO_OFFER))
        pays = opts.net[free, j] > 0  # where it would be used, if it works: these come first
        free = np.concatenate([rng.permutation(free[pays]), rng.permutation(free[~pays])])
        if len(free) < 2:
            rows.append({"offer_id": oid, "arm": TEST, "status": state[j], "targeted": 0,
                         "treated": 0, "hold_out": 0, "statement": "no eligible customer left "
                         "for a test slice"})
            continue
        per_arm = slice_size_per_arm(float(p[free].mean()), settings)
        cost = float(opts.costs[j])
        afford = int(test_budget / len(slices) // cost) if cost > 0 else len(free)
        sent = min(per_arm, afford, len(free) // (2 * (len(slices) - done)))  # leave some for
        #                                                          the slices still to come
        if sent < 1:
            rows.append({"offer_id": oid, "arm": TEST, "status": state[j], "targeted": 0,
                         "treated": 0, "hold_out": 0,
                         "statement": f"the test budget ({test_budget:,.0f}) pays for no {oid}"})
            continue
        chosen = rng.permutation(free[:2 * sent])  # then a random half is held out
        offer[chosen] = j
        arm[chosen] = TEST
        treated[chosen[:sent]] = True
        treated[chosen[sent:]] = False
        propensity[chosen] = 0.5
        hold = np.zeros(n, dtype=bool)
        hold[chosen[sent:]] = True
        targeted = np.zeros(n, dtype=bool)
        targeted[chosen] = True
        rows.append(_statement(oid, TEST, state[j], targeted, hold, p, opts.reduction[:, j],
                               settings))
    statements = pd.DataFrame(rows, columns=["offer_id", "arm", "status", "targeted", "treated",
                                             "hold_out", "hold_out_share", "base_rate",
                                             "expected_cut", "detectable_cut", "min_effect",
                                             "statement"])
    return CampaignDesign(offer, treated & (offer != NO_OFFER), arm.astype(str), propensity,
                          statements, int(seed), settings)


def assignment_frame(design: CampaignDesign, customer_ids, catalogue: Catalogue,
                     opts: Options, value: np.ndarray, campaign_id: str,
                     sent_ts: pd.Timestamp) -> pd.DataFrame:
    """The campaign as the offers table records it (one row per selected customer, hold-outs
    included), with what the readout needs: the arm, the propensity, the predicted cut, the
    customer's value, the campaign id and the assignment seed."""
    rows = np.flatnonzero(design.selected)
    j = design.offer[rows]
    ids = np.asarray(catalogue.ids, dtype=object)
    treated = design.treated[rows]
    return pd.DataFrame({
        "customer_id": np.asarray(customer_ids)[rows].astype(str),
        "sent_ts": pd.Timestamp(sent_ts),
        "offer_id": ids[j].astype(str),
        "treated": treated,
        "cost": np.where(treated, opts.costs[j], 0.0),
        "arm": design.arm[rows],
        "propensity": design.propensity[rows],
        "predicted_churn_cut": opts.reduction[rows, j],
        "customer_value": np.asarray(value, dtype=float)[rows],
        "campaign_id": campaign_id,
        "assignment_seed": design.seed,
    })


def offer_status(sources: dict[str, tuple[str, float]], readouts: dict[str, str] | None = None
                 ) -> dict[str, str]:
    """Each offer's evidence: a learnt effect the held-out campaigns vouch for (scale > 0) is
    PROVEN; a prior, or a learnt effect shrunk to nothing, is UNKNOWN; the latest readout's
    verdict, when given, wins. ``sources``: offer id -> (source, scale)."""
    out = {oid: PROVEN if src == "learnt" and scale > 0 else UNKNOWN
           for oid, (src, scale) in sources.items()}
    out.update(readouts or {})
    return out

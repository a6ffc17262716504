"""The policies judged before a campaign is sent, as actions on logged campaign customers.

For each logged campaign (customers selected at one date), each policy names one action per
customer, with the same spend per customer as the plan: the current policy (the budgeted
allocation of the model's effects), risk-only (the riskiest customers get one fixed offer) and no
offer. ``reward_model`` is the model's own prediction of every action's net value (``q`` of the
doubly robust estimate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.core import ScoringCore
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import Catalogue
from scoring.offers.ope import action_rewards
from scoring.offers.policy import NO_OFFER, Options

CURRENT, RISK_ONLY, NO_OFFER_POLICY = "current", "risk-only", "no offer"


def model_options(core: ScoringCore, x: np.ndarray) -> tuple[Options, np.ndarray, np.ndarray]:
    """The model's options for a block of customers, their churn probability and value."""
    p = core.model.scorer.predict(x)
    customers, opts = core.offer_options(x, p)
    return opts, p, customers.value


def budgeted(opts: Options, catalogue: Catalogue, groups: np.ndarray, spend_per_customer: float
             ) -> np.ndarray:
    """The allocation within each group (a logged campaign), budget = spend per customer x its
    size."""
    action = np.full(len(groups), NO_OFFER)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        sub = Options(opts.net[rows], opts.reduction[rows], opts.costs, opts.cooling[rows])
        action[rows] = allocate(sub, catalogue, spend_per_customer * len(rows)).offer
    return action


def risk_only(p: np.ndarray, catalogue: Catalogue, offer_id: str, groups: np.ndarray,
              spend_per_customer: float) -> np.ndarray:
    """The riskiest customers of each group get ``offer_id``, as many as the spend pays for."""
    j = catalogue.ids.index(offer_id)
    cost = catalogue.offers[j].cost
    action = np.full(len(groups), NO_OFFER)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        k = len(rows) if cost <= 0 else int(spend_per_customer * len(rows) // cost)
        action[rows[np.argsort(-p[rows], kind="stable")[:k]]] = j
    return action


def policy_actions(core: ScoringCore, frame: pd.DataFrame, groups: np.ndarray,
                   spend_per_customer: float, risk_offer: str,
                   challenger: ScoringCore | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each policy's actions on the logged customers (``frame``: their features at the campaign
    date), and the current model's reward model."""
    opts, p, value = model_options(core, core.model.scorer.matrix(frame))
    actions = {CURRENT: budgeted(opts, core.catalogue, groups, spend_per_customer),
               RISK_ONLY: risk_only(p, core.catalogue, risk_offer, groups, spend_per_customer),
               NO_OFFER_POLICY: np.full(len(groups), NO_OFFER)}
    if challenger is not None:
        c_opts, _, _ = model_options(challenger, challenger.model.scorer.matrix(frame))
        actions["challenger"] = budgeted(c_opts, core.catalogue, groups, spend_per_customer)
    q = action_rewards(p, -opts.reduction, value, core.catalogue.costs)
    return actions, q

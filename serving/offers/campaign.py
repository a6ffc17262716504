"""Campaign mode: allocate offers across a scored base within a budget and per-offer caps.

Each customer gets at most one offer; the total cost stays within the budget; no offer exceeds its
cap. Two methods:

- ``greedy`` (default): options by net value per unit of cost, best first, compared with the single
  most valuable option (the classic guard that keeps greedy within half of the optimum on
  knapsack-like problems; on realistic campaigns it is within a fraction of a percent, see
  tests/serving/test_campaign.py);
- ``exact``: the integer programme solved by HiGHS (``scipy.optimize.milp``), for small and
  medium campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.offers.catalogue import Catalogue
from serving.offers.policy import NO_OFFER, Options


@dataclass(frozen=True)
class Plan:
    offer: np.ndarray  # offer index per customer, NO_OFFER for none
    net_value: float
    spend: float
    counts: dict[str, int]


def _plan(choice: np.ndarray, opts: Options, catalogue: Catalogue) -> Plan:
    sent = choice != NO_OFFER
    rows = np.flatnonzero(sent)
    net = float(opts.net[rows, choice[rows]].sum()) if len(rows) else 0.0
    spend = float(opts.costs[choice[rows]].sum()) if len(rows) else 0.0
    counts = {o.id: int((choice == j).sum()) for j, o in enumerate(catalogue.offers)}
    return Plan(choice, net, spend, counts)


def _candidates(opts: Options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i, j = np.nonzero(opts.net > 0)
    return i, j, opts.net[i, j]


def allocate_greedy(opts: Options, catalogue: Catalogue, budget: float) -> Plan:
    n = opts.net.shape[0]
    i, j, net = _candidates(opts)
    cost = opts.costs[j]
    ratio = np.where(cost > 0, net / np.where(cost > 0, cost, 1), np.inf)
    order = np.lexsort((j, i, -net, -ratio))  # deterministic: ratio, then net, then ids
    caps = np.array([o.cap_per_campaign for o in catalogue.offers])
    used = np.zeros(len(caps), dtype=int)
    choice = np.full(n, NO_OFFER)
    left = budget
    for k in order:
        c, o = i[k], j[k]
        if choice[c] != NO_OFFER or used[o] >= caps[o] or cost[k] > left + 1e-9:
            continue
        choice[c] = o
        used[o] += 1
        left -= cost[k]
    plan = _plan(choice, opts, catalogue)
    fits = (cost <= budget) & (caps[j] > 0)
    if fits.any():  # the single best option alone, in case greedy filled up on small ones
        k = np.flatnonzero(fits)[np.argmax(net[fits])]
        if net[k] > plan.net_value:
            single = np.full(n, NO_OFFER)
            single[i[k]] = j[k]
            plan = _plan(single, opts, catalogue)
    return plan


def allocate_exact(opts: Options, catalogue: Catalogue, budget: float) -> Plan:
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, vstack

    n, m = opts.net.shape
    i, j, net = _candidates(opts)
    choice = np.full(n, NO_OFFER)
    if len(i) == 0:
        return _plan(choice, opts, catalogue)
    k = np.arange(len(i))
    per_customer = csr_matrix((np.ones(len(i)), (i, k)), shape=(n, len(i)))
    per_offer = csr_matrix((np.ones(len(i)), (j, k)), shape=(m, len(i)))
    spend = csr_matrix(opts.costs[j].reshape(1, -1))
    caps = np.array([o.cap_per_campaign for o in catalogue.offers], dtype=float)
    a = vstack([per_customer, per_offer, spend])
    upper = np.concatenate([np.ones(n), caps, [budget]])
    res = milp(-net, constraints=LinearConstraint(a, -np.inf, upper),
               integrality=np.ones(len(i)), bounds=Bounds(0, 1))
    if not res.success:
        raise RuntimeError(f"campaign optimisation failed: {res.message}")
    take = res.x > 0.5
    choice[i[take]] = j[take]
    return _plan(choice, opts, catalogue)


def allocate(opts: Options, catalogue: Catalogue, budget: float, method: str = "greedy") -> Plan:
    if budget < 0:
        raise ValueError("the campaign budget must be zero or more")
    if method == "greedy":
        return allocate_greedy(opts, catalogue, budget)
    if method == "exact":
        return allocate_exact(opts, catalogue, budget)
    raise ValueError(f"unknown allocation method {method!r} (greedy or exact)")

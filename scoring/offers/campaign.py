"""Campaign mode: allocate offers across a scored base within a budget and per-offer caps.

Each customer gets at most one offer; the total cost stays within the budget; no offer exceeds its
cap. Two methods:

- ``greedy`` (default): the better of two fast heuristics, each filled up greedily: (1) options by
  net value per unit of cost; (2) a Lagrangian price on the budget, found by bisection, under
  which every customer takes the option with the best net value minus its priced cost. The single
  most valuable option is also compared (the classic guard that keeps greedy within half of the
  optimum). Measured against the exact optimum in tests/scoring/test_offers.py;
- ``exact``: the integer programme solved by HiGHS (``scipy.optimize.milp``), for small and
  medium campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from features.errors import BadInput
from scoring.offers.catalogue import Catalogue
from scoring.offers.policy import NO_OFFER, Options


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


def _fill(choice: np.ndarray, order: np.ndarray, i, j, cost, caps, budget) -> np.ndarray:
    """Add options in ``order`` while the customer is free, the cap and the budget allow."""
    choice = choice.copy()
    used = np.bincount(choice[choice != NO_OFFER], minlength=len(caps)).astype(np.int64)
    left = budget - cost_of(choice, cost, i, j)
    _fill_loop(choice, np.asarray(order, dtype=np.int64), np.asarray(i, dtype=np.int64),
               np.asarray(j, dtype=np.int64), np.asarray(cost, dtype=np.float64),
               np.asarray(caps, dtype=np.int64), used, float(left))
    return choice


@numba.njit(cache=True, nogil=True)
def _fill_loop(choice, order, i, j, cost, caps, used, left):  # pragma: no cover - compiled
    for k in order:
        c, o = i[k], j[k]
        if choice[c] != NO_OFFER or used[o] >= caps[o] or cost[k] > left + 1e-9:
            continue
        choice[c] = o
        used[o] += 1
        left -= cost[k]


def cost_of(choice: np.ndarray, cost: np.ndarray, i: np.ndarray, j: np.ndarray) -> float:
    sent = choice[i] == j
    return float(cost[sent].sum())


def _lagrangian(opts: Options, i, j, net, cost, caps, budget) -> np.ndarray:
    n = opts.net.shape[0]

    matrix_cost = np.broadcast_to(opts.costs, opts.net.shape)

    def pick(lam: float) -> np.ndarray:
        adjusted = np.where(opts.net > 0, opts.net - lam * matrix_cost, -np.inf)
        best = np.argmax(adjusted, axis=1)
        choice = np.where(adjusted[np.arange(n), best] > 0, best, NO_OFFER)
        if (np.bincount(choice[choice != NO_OFFER], minlength=len(caps)) <= caps).all():
            return choice
        adj = net - lam * cost  # caps bind: fill by adjusted value, one by one
        order = np.argsort(-adj, kind="stable")  # ties: customer, then offer order
        return _fill(np.full(n, NO_OFFER), order[adj[order] > 0], i, j, cost, caps, np.inf)

    lo, hi = 0.0, float(np.max(net / np.maximum(cost, 1e-9))) + 1.0
    for _ in range(40):  # to a relative precision of 1e-6 on the price (about 25 steps)
        if hi - lo <= 1e-6 * hi:
            break
        mid = (lo + hi) / 2
        if cost_of(pick(mid), cost, i, j) > budget:
            lo = mid
        else:
            hi = mid
    choice = pick(hi)  # within budget
    ratio = np.where(cost > 0, net / np.where(cost > 0, cost, 1), np.inf)
    return _fill(choice, np.lexsort((-net, -ratio)), i, j, cost, caps, budget)


def allocate_greedy(opts: Options, catalogue: Catalogue, budget: float) -> Plan:
    n = opts.net.shape[0]
    i, j, net = _candidates(opts)
    cost = opts.costs[j]
    caps = np.array([o.cap_per_campaign for o in catalogue.offers])
    ratio = np.where(cost > 0, net / np.where(cost > 0, cost, 1), np.inf)
    # candidates come in (customer, offer) order and lexsort is stable: ties keep that order
    by_ratio = _fill(np.full(n, NO_OFFER), np.lexsort((-net, -ratio)), i, j, cost, caps, budget)
    plans = [_plan(by_ratio, opts, catalogue)]
    if len(i):
        plans.append(_plan(_lagrangian(opts, i, j, net, cost, caps, budget), opts, catalogue))
    fits = (cost <= budget) & (caps[j] > 0)
    if fits.any():  # the single best option alone, in case the others filled up on small ones
        k = np.flatnonzero(fits)[np.argmax(net[fits])]
        single = np.full(n, NO_OFFER)
        single[i[k]] = j[k]
        plans.append(_plan(single, opts, catalogue))
    return max(plans, key=lambda p: p.net_value)


def allocate_exact(opts: Options, catalogue: Catalogue, budget: float) -> Plan:
    """The optimum. The programme holds only the candidate (customer, offer) options, in the
    customers' order, and one "at most one offer" row per customer who has one: customers
    without any option worth sending change nothing in what the solver is given, so the same
    customers' options give the same choice (the same one of several equally good solutions)
    with or without them (the batch job allocates over those customers only)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, vstack

    n, m = opts.net.shape
    i, j, net = _candidates(opts)
    choice = np.full(n, NO_OFFER)
    if len(i) == 0:
        return _plan(choice, opts, catalogue)
    k = np.arange(len(i))
    _, customer = np.unique(i, return_inverse=True)  # the customers with an option, in order
    per_customer = csr_matrix((np.ones(len(i)), (customer, k)), shape=(customer.max() + 1, len(i)))
    per_offer = csr_matrix((np.ones(len(i)), (j, k)), shape=(m, len(i)))
    spend = csr_matrix(opts.costs[j].reshape(1, -1))
    caps = np.array([o.cap_per_campaign for o in catalogue.offers], dtype=float)
    a = vstack([per_customer, per_offer, spend])
    upper = np.concatenate([np.ones(per_customer.shape[0]), caps, [budget]])
    res = milp(-net, constraints=LinearConstraint(a, -np.inf, upper),
               integrality=np.ones(len(i)), bounds=Bounds(0, 1))
    if not res.success:
        raise RuntimeError(f"campaign optimisation failed: {res.message}")
    take = res.x > 0.5
    choice[i[take]] = j[take]
    return _plan(choice, opts, catalogue)


def allocate(opts: Options, catalogue: Catalogue, budget: float, method: str = "greedy") -> Plan:
    if budget < 0:
        raise BadInput("the campaign budget must be zero or more")
    if method == "greedy":
        return allocate_greedy(opts, catalogue, budget)
    if method == "exact":
        return allocate_exact(opts, catalogue, budget)
    raise ValueError(f"unknown allocation method {method!r} (greedy or exact)")

"""The offer policy: for each customer, the eligible offer with the highest expected net value.

    expected_net_value = churn_reduction x customer_value - cost

where ``churn_reduction`` is the fall in churn probability the offer causes: learnt from past
randomised campaigns (uplift), or ``P(churn) x prior_effect`` from the catalogue. An offer that
would raise churn is never sent; no offer is sent when nothing has a positive net value, when the
customer had an offer within the cool-down, or when no offer is eligible. Ties go to the offer
listed first in the catalogue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from scoring.offers.catalogue import Catalogue, Offer, OfferArrays

NO_OFFER = -1


@dataclass(frozen=True)
class Customers:
    """What the policy needs about a block of customers (arrays of the same length)."""

    p_churn: np.ndarray
    value: np.ndarray
    days_since_last_offer: np.ndarray  # NaN = never
    segment: np.ndarray | None = None
    plan: np.ndarray | None = None
    has_contract: np.ndarray | None = None


@dataclass(frozen=True)
class Decision:
    offer_id: str | None
    expected_net_value: float
    churn_reduction: float
    cost: float
    customer_value: float
    effect_source: str | None
    addresses: tuple[str, ...]
    why: str

    def as_dict(self) -> dict:
        return asdict(self)


def eligible_block(c: Customers, offers: OfferArrays) -> np.ndarray:
    """Who may get each offer by its eligibility rules: (customers x offers) booleans.

    A customer qualifies when their churn risk is in the offer's risk range and their value is at
    least its minimum, and, where the offer restricts them and the customer's attribute is known,
    their segment and plan are among its own and their contract matches. A missing risk or value
    (NaN) never qualifies."""
    p, value = np.asarray(c.p_churn)[:, None], np.asarray(c.value)[:, None]
    # compared in the customers' own precision, as a plain number would be (float32 risks
    # against float32 limits; integers against floats)
    p_type, value_type = np.result_type(p, 0.0), np.result_type(value, 0.0)
    ok = ((p >= offers.risk_low.astype(p_type, copy=False))
          & (p <= offers.risk_high.astype(p_type, copy=False))
          & (value >= offers.min_value.astype(value_type, copy=False)))
    for j, e in offers.restricted:
        if e.segments is not None and c.segment is not None:
            ok[:, j] &= np.isin(c.segment, e.segments)
        if e.plans is not None and c.plan is not None:
            ok[:, j] &= np.isin(c.plan, e.plans)
        if e.contract != "any" and c.has_contract is not None:
            contract = np.asarray(c.has_contract, dtype=float) >= 0.5
            ok[:, j] &= contract if e.contract == "contract" else ~contract
    return ok


def eligible(offer: Offer, c: Customers) -> np.ndarray:
    """The customers one offer may go to (``eligible_block`` for that offer alone)."""
    return eligible_block(c, OfferArrays.of([offer]))[:, 0]


@dataclass(frozen=True)
class Options:
    """Net value of every (customer, offer) pair; -inf where the offer may not be sent."""

    net: np.ndarray  # (customers, offers)
    reduction: np.ndarray
    costs: np.ndarray
    cooling: np.ndarray  # customers inside the contact cool-down


def options(c: Customers, effects: dict[str, np.ndarray], catalogue: Catalogue) -> Options:
    """Every offer's net value for every customer, all offers at once."""
    n, offers = len(c.p_churn), catalogue.offers
    costs = catalogue.costs
    # no offer yet (missing) never cools down: NaN < anything is False
    cooling = np.asarray(c.days_since_last_offer, dtype=float) < catalogue.contact_cooldown_days
    reduction = np.zeros((n, len(offers)))
    for j, offer in enumerate(offers):
        reduction[:, j] = effects[offer.id]
    np.negative(reduction, out=reduction)
    ok = eligible_block(c, catalogue.arrays)
    ok &= ~cooling[:, None] & (reduction > 0)  # a harmful offer is never an option
    net = np.where(ok, reduction * np.asarray(c.value)[:, None] - costs, -np.inf)
    return Options(net, reduction, costs, cooling)


def best_offers(opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: index of the best offer (NO_OFFER when none pays) and its net value."""
    if opts.net.shape[1] == 0:
        return np.full(len(opts.net), NO_OFFER), np.zeros(len(opts.net))
    j = np.argmax(opts.net, axis=1)  # first maximum: ties go to the catalogue's order
    best = opts.net[np.arange(len(j)), j]
    j = np.where(best > 0, j, NO_OFFER)
    return j, np.where(best > 0, best, 0.0)


def explain(i: int, j: int, c: Customers, opts: Options, catalogue: Catalogue,
            sources: dict[str, str]) -> Decision:
    """The decision for customer ``i`` (offer index ``j``) in words."""
    value = float(c.value[i])
    if j == NO_OFFER:
        if opts.cooling[i]:
            why = (f"no offer: the last one was {c.days_since_last_offer[i]:.0f} days ago "
                   f"(cool-down {catalogue.contact_cooldown_days} days)")
        elif np.all(opts.reduction[i] <= 0):
            why = "no offer: no offer is expected to lower this customer's churn risk"
        elif np.all(np.isneginf(opts.net[i])):
            why = "no offer: none is eligible for this customer"
        else:
            k = int(np.argmax(np.where(np.isneginf(opts.net[i]), -1e18, opts.net[i])))
            why = (f"no offer: the best, {catalogue.offers[k].id}, would save "
                   f"{opts.reduction[i, k] * value:.2f} for a cost of {opts.costs[k]:.2f}")
        return Decision(None, 0.0, 0.0, 0.0, round(value, 2), None, (), why)
    offer = catalogue.offers[j]
    r, net = float(opts.reduction[i, j]), float(opts.net[i, j])
    source = sources.get(offer.id, "prior")
    why = (f"{offer.name}: cuts churn probability by {r:.3f} ({source} effect) on a customer "
           f"worth {value:.2f}; expected net value {net:.2f} after a cost of {offer.cost:.2f}")
    return Decision(offer.id, round(net, 4), round(r, 5), offer.cost, round(value, 2), source,
                    tuple(offer.addresses), why)


def decide(c: Customers, effects: dict[str, np.ndarray], catalogue: Catalogue,
           sources: dict[str, str]) -> list[Decision]:
    """The best offer (or none) for every customer, each with its explanation."""
    opts = options(c, effects, catalogue)
    j, _ = best_offers(opts)
    return [explain(i, int(j[i]), c, opts, catalogue, sources) for i in range(len(j))]

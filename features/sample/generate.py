"""The sample CRM: a month-by-month simulation of customers whose satisfaction and engagement drift.

Each month, for every active customer: product problems happen (a few turn into support tickets:
most unhappy customers never complain), tickets resolved slowly, reopened or escalated hurt
satisfaction, surveys reflect it, engagement follows satisfaction with a lag, orders follow
engagement (with seasonality and heavy-tailed spend), each account reports a monthly usage summary
(days active), and the churn hazard follows satisfaction, engagement and support pain. Retention
campaigns are randomised (treated vs. hold-out) and work differently on different customers.

Everything is vectorised over customers; one ``numpy`` generator seeded once makes it repeatable.
The steps draw from it in a fixed order (the order of the calls in ``generate``): reordering them
changes every table for a given seed. One module per table: ``customers``, ``churn`` (who leaves),
``tickets``, ``surveys``, ``orders``, ``engagement``, ``offers``, and ``truth``; the causal
formulas are in ``mechanics`` and the shared state in ``state``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from features.errors import BadInput
from features.progress import bar
from features.sample.churn import end_month, start_month
from features.sample.customers import customer_columns, draw_customers, initial_state
from features.sample.engagement import ENGAGEMENT_TYPES, engagement_events
from features.sample.offers import is_campaign_month, retention_campaign
from features.sample.orders import place_orders
from features.sample.state import Calendar, Events
from features.sample.surveys import send_surveys
from features.sample.tickets import support_tickets
from features.sample.truth import offer_effects

__all__ = ["ENGAGEMENT_TYPES", "SampleData", "SampleSpec", "generate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSpec:
    customers: int = 20_000
    months: int = 24
    seed: int = 7
    start: str = "2024-01-01"

    def __post_init__(self):
        if self.customers < 1:
            raise BadInput("--customers must be at least 1")
        if self.months < 6:
            raise BadInput("--months must be at least 6 (features look back, labels forward)")


@dataclass
class SampleData:
    """Arrays of every table (customer positions in ``cust``), and the truth for evaluation."""

    spec: SampleSpec
    customers: dict[str, np.ndarray]
    tables: dict[str, dict[str, np.ndarray]]
    churn_probability: dict[str, np.ndarray]
    offer_effects: dict[str, np.ndarray]
    end_ns: int


def generate(spec: SampleSpec) -> SampleData:
    """Simulate ``spec.months`` months of ``spec.customers`` customers from ``spec.seed``."""
    rng = np.random.default_rng(spec.seed)
    cal = Calendar.of(spec.start, spec.months)
    people = draw_customers(rng, spec.customers, cal)
    state = initial_state(rng, people)
    price_shock_month = spec.months // 2
    orders, tickets, surveys, engagement, offers = Events(), Events(), Events(), Events(), Events()
    churn_probability = Events()

    for m in bar(range(spec.months), desc="simulating the sample CRM", unit="month"):
        month = start_month(rng, people, state, cal, m, churn_probability)
        support = support_tickets(rng, people, month, tickets)
        send_surveys(rng, people, state, month, support, surveys)
        place_orders(rng, people, state, cal, month, orders, engagement)
        engagement_events(rng, people, state, month, engagement)
        if is_campaign_month(m):
            retention_campaign(rng, people, state, month, offers)
        end_month(rng, people, state, month, support.impact, support.pain_add,
                  price_shock=m == price_shock_month)
        log.debug("month %d: %d active, %.3f churned", m, len(month.act), month.churned.mean())

    effects = offer_effects(people, state, cal.end_ns)
    return SampleData(spec, customer_columns(people, state),
                      dict(orders=orders.arrays(), tickets=tickets.arrays(),
                           surveys=surveys.arrays(), engagement=engagement.arrays(),
                           offers=offers.arrays()),
                      churn_probability.arrays(), effects.arrays(), cal.end_ns)

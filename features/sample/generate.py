"""The sample CRM: a month-by-month simulation of customers whose satisfaction and engagement drift.

Each month, for every active customer: product problems happen (a few turn into support tickets:
most unhappy customers never complain), tickets resolved slowly, reopened or escalated hurt
satisfaction, surveys reflect it, engagement follows satisfaction with a lag, orders follow
engagement (with seasonality and heavy-tailed spend), each account reports a monthly usage summary
(days active), and the churn hazard follows satisfaction, engagement and support pain. Retention
campaigns are randomised (treated vs. hold-out) and work differently on different customers.

Everything is vectorised over customers. Customers are simulated in blocks of ``spec.block``
(customers ``b * block`` onwards), each from its own ``numpy`` generator seeded by ``(seed, b)``
(block 0 by ``seed`` alone, so a sample of up to one block is what it was before blocks existed):
a block's tables depend only on the spec and the block number, so the partitioned writer (one block
in memory at a time) and ``generate`` (every block) give the same rows. The block size is part of
the spec: another block size is another sample (as another seed is). The steps draw from a
block's generator in a fixed order (the order of the calls in ``generate_block``): reordering them
changes every table for a given seed. One module per table: ``customers``, ``churn`` (who leaves),
``tickets, ``surveys``, ``orders``, ``engagement``, ``offers``, and ``truth``; the causal
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
from features.sample.offers import CAMPAIGN_STYLES
from features.sample.orders import place_orders
from features.sample.state import Calendar, Events
from features.sample.surveys import send_surveys
from features.sample.tickets import support_tickets
from features.sample.truth import offer_effects

__all__ = ["BLOCK_CUSTOMERS", "ENGAGEMENT_TYPES", "SampleData", "SampleSpec", "generate",
           "generate_block"]

log = logging.getLogger(__name__)

BLOCK_CUSTOMERS = 100_000  # customers simulated together (and one part file of each table)


@dataclass(frozen=True)
class SampleSpec:
    customers: int = 20_000
    months: int = 24
    seed: int = 7
    start: str = "2024-01-01"
    block: int = BLOCK_CUSTOMERS  # customers simulated together, from one seed
    campaigns: str = "quarterly"  # past retention campaigns: a key of offers.CAMPAIGN_STYLES

    @property
    def blocks(self) -> int:
        return -(-self.customers // self.block)

    def __post_init__(self):
        if self.block < 1:
            raise BadInput("--block must be at least 1 customer")
        if self.customers < 1:
            raise BadInput("--customers must be at least 1")
        if self.months < 6:
            raise BadInput("--months must be at least 6 (features look back, labels forward)")
        if self.campaigns not in CAMPAIGN_STYLES:
            raise BadInput(f"--campaigns must be one of {', '.join(CAMPAIGN_STYLES)}, "
                           f"not {self.campaigns!r}")


@dataclass
class SampleData:
    """Arrays of every table (customer positions in ``cust``), and the truth for evaluation."""

    spec: SampleSpec
    customers: dict[str, np.ndarray]
    tables: dict[str, dict[str, np.ndarray]]
    churn_probability: dict[str, np.ndarray]
    offer_effects: dict[str, np.ndarray]
    end_ns: int
    first: int = 0  # position of the first customer (its id is C{first + 1})

    @property
    def customer_count(self) -> int:
        return len(self.customers["signup"])


def generate(spec: SampleSpec) -> SampleData:
    """Simulate ``spec.months`` months of ``spec.customers`` customers from ``spec.seed``: every
    block (``generate_block``) joined, customer positions running on from block to block."""
    blocks = [generate_block(spec, b) for b in range(spec.blocks)]
    return blocks[0] if len(blocks) == 1 else _join(blocks)


def block_rng(spec: SampleSpec, b: int) -> np.random.Generator:
    return np.random.default_rng(spec.seed if b == 0 else [spec.seed, b])


def generate_block(spec: SampleSpec, b: int) -> SampleData:
    """Block ``b`` of the sample: customers ``b * spec.block`` up to the next block (positions
    in ``cust`` are global), simulated from ``block_rng(spec, b)``."""
    first = b * spec.block
    n = min(spec.customers, first + spec.block) - first
    if n < 1:
        raise BadInput(f"block {b} is past the last customer ({spec.customers})")
    rng = block_rng(spec, b)
    cal = Calendar.of(spec.start, spec.months)
    people = draw_customers(rng, n, cal)
    state = initial_state(rng, people)
    price_shock_month = spec.months // 2
    orders, tickets, surveys, engagement, offers = Events(), Events(), Events(), Events(), Events()
    churn_probability = Events()
    is_campaign_month, campaign = CAMPAIGN_STYLES[spec.campaigns]

    for m in bar(range(spec.months), desc="simulating the sample CRM", unit="month"):
        month = start_month(rng, people, state, cal, m, churn_probability)
        support = support_tickets(rng, people, month, tickets)
        send_surveys(rng, people, state, month, support, surveys)
        place_orders(rng, people, state, cal, month, orders, engagement)
        engagement_events(rng, people, state, month, engagement)
        if is_campaign_month(m):
            campaign(rng, people, state, month, offers)
        end_month(rng, people, state, month, support.impact, support.pain_add,
                  price_shock=m == price_shock_month)
        if log.isEnabledFor(logging.DEBUG) and len(month.churned):  # none left: no mean
            log.debug("month %d: %d active, %.3f churned", m, len(month.act), month.churned.mean())

    effects = offer_effects(people, state, cal.end_ns)
    tables = dict(orders=orders.arrays(), tickets=tickets.arrays(), surveys=surveys.arrays(),
                  engagement=engagement.arrays(), offers=offers.arrays())
    truth = churn_probability.arrays(), effects.arrays()
    for arrays in (*tables.values(), *truth):
        if first:
            arrays["cust"] = arrays["cust"] + np.int32(first)
    return SampleData(spec, customer_columns(people, state), tables, truth[0], truth[1], cal.end_ns,
                      first)


def _join(blocks: list[SampleData]) -> SampleData:
    """Blocks as one sample (the writer keeps each table's rows in block order)."""
    def cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    first = blocks[0]
    return SampleData(first.spec, cat([blk.customers for blk in blocks]),
                      {name: cat([blk.tables[name] for blk in blocks]) for name in first.tables},
                      cat([blk.churn_probability for blk in blocks]),
                      cat([blk.offer_effects for blk in blocks]), first.end_ns, first.first)

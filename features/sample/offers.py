"""The offers table of the sample: a randomised retention campaign every quarter.

A fifth of the active customers are picked, each gets a random offer, and 80% are treated (the
rest are the hold-out). An offer changes the treated customer's churn hazard for a few months
(``mechanics.offer_multiplier``): it helps persuadable customers and harms sleeping dogs.
"""

from __future__ import annotations

import numpy as np

from features.sample import mechanics as mx
from features.sample.state import DAY, NAT, Customers, CustomerState, Events, Month


def is_campaign_month(m: int) -> bool:
    """The last month of each quarter of the simulation."""
    return m % 3 == 2


def retention_campaign(rng: np.random.Generator, people: Customers, state: CustomerState,
                       month: Month, offers: Events) -> None:
    """Send this month's campaign on its 20th day (appended to ``offers``); the treated
    customers' offers take effect from next month (sets ``state.offer_mult`` and ``offer_until``)."""
    act, m, end_ns = month.act, month.m, month.end_ns
    sent_day = month.lo_m + 19 * DAY
    # still there on the day it is sent: signed up before it, not left before it
    chosen = (rng.random(len(act)) < 0.2) & (people.signup[act] < sent_day) & (month.hi > sent_day)
    idx = np.flatnonzero(chosen)
    cc = act[idx]
    offer = rng.integers(0, len(mx.OFFER_IDS), len(idx))
    treated = rng.random(len(idx)) < 0.8
    mult = np.ones(len(idx))
    for j, oid in enumerate(mx.OFFER_IDS):
        sel = offer == j
        c = cc[sel]
        mult[sel] = mx.offer_multiplier(oid, people.price_sens[c], state.pain[c], state.eng[c],
                                        people.loyalty[c], people.sleeping_dog[c], state.sat[c])
    mult = np.where(treated, mult, 1.0)
    state.offer_mult[cc] = mult
    state.offer_until[cc] = m + mx.OFFER_MONTHS
    acc_ts = sent_day + (rng.exponential(4.0, len(idx)) * DAY).astype(np.int64)
    accept = (treated & (rng.random(len(idx)) < 0.1 + 0.8 * np.clip(1 - mult, 0, 1))
              & (acc_ts < np.minimum(state.churn_ts[cc], end_ns)))
    cost = np.array([mx.OFFERS[o]["cost"] for o in mx.OFFER_IDS])[offer]
    offers.add(cust=cc, ts=np.full(len(idx), sent_day), offer=offer, treated=treated,
               accepted=np.where(accept, acc_ts, NAT), cost=np.where(treated, cost, 0.0))

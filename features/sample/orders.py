"""The orders table of the sample: orders follow engagement, with seasonality and heavy-tailed
spend; an order also earns loyalty points and sometimes a review (engagement events)."""

from __future__ import annotations

import numpy as np

from features.sample.engagement import CODE
from features.sample.state import DAY, Calendar, Customers, CustomerState, Events, Month, times

SEASON = {11: 0.3, 12: 0.35, 1: -0.15, 2: -0.1}  # extra orders by calendar month


def place_orders(rng: np.random.Generator, people: Customers, state: CustomerState, cal: Calendar,
                 month: Month, orders: Events, engagement: Events) -> None:
    """This month's orders (appended to ``orders``), their loyalty points and reviews (appended
    to ``engagement``)."""
    act, lo, hi, end_ns = month.act, month.lo, month.hi, month.end_ns
    sat, eng = state.sat, state.eng
    season = 1 + SEASON.get(int(cal.month_no[month.m]), 0.0)
    rate = people.freq[act] * (0.3 + 1.0 * eng[act]) * season * month.frac
    k = rng.poisson(rate)
    o_idx = np.repeat(np.arange(len(act)), k)
    no = len(o_idx)
    oc = act[o_idx]
    ots = times(rng, lo[o_idx], hi[o_idx])
    amount = np.round(people.spend_mu[oc] * rng.lognormal(0, 0.45, no), 2)
    discounted = rng.random(no) < 0.02 + 0.8 * people.price_sens[oc]
    discount = np.where(discounted, np.round(amount * rng.uniform(0.05, 0.25, no), 2), 0.0)
    orders.add(cust=oc, ts=ots, amount=amount, discount=discount,
               quantity=1 + rng.poisson(1.0, no), channel=rng.choice(3, no, p=[.5, .3, .2]))
    earn = people.loyalty[oc]
    engagement.add(cust=oc[earn], ts=ots[earn] + 60 * 10**9,
                   kind=np.full(earn.sum(), CODE["loyalty_earn"]), value=np.round(amount[earn]))
    rev = rng.random(no) < 0.03 + 0.03 * np.abs(sat[oc])
    rts = ots[rev] + (rng.exponential(5.0, rev.sum()) * DAY).astype(np.int64)
    keep = rts < np.minimum(state.churn_ts[oc[rev]], end_ns)
    rating = np.clip(np.round(3.4 + 0.9 * sat[oc[rev]] + rng.normal(0, 0.8, rev.sum())), 1, 5)
    engagement.add(cust=oc[rev][keep], ts=rts[keep], kind=np.full(keep.sum(), CODE["review"]),
                   value=rating[keep])

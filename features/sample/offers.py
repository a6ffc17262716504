"""The offers table of the sample: randomised retention campaigns.

Two styles. ``retention_campaign`` (the default, every quarter): a fifth of the active customers
are picked, each gets a random offer, and 80% are treated (the rest are the hold-out).
``programme_campaign`` (every month, ``is_programme_month``), closer to how retention programmes
are run: customers who look at risk (fading engagement, low satisfaction, support pain) are picked
more often, the offer follows what seems to bother them (price, support, engagement), 10% are held
out, customers with an offer in force are left alone and others are picked again in later
campaigns. Either way an offer changes the treated customer's churn hazard for a few months
(``mechanics.offer_multiplier``): it helps persuadable customers and harms sleeping dogs. Each row
records its ``propensity``: the probability of what the customer got (the offer if treated,
nothing if held out) once selected, which off-policy evaluation needs when the assignment is not
uniform.
"""

from __future__ import annotations

import numpy as np

from features.numeric import sigmoid
from features.sample import mechanics as mx
from features.sample.state import DAY, NAT, Customers, CustomerState, Events, Month


def is_campaign_month(m: int) -> bool:
    """The last month of each quarter of the simulation."""
    return m % 3 == 2


def retention_campaign(rng: np.random.Generator, people: Customers, state: CustomerState,
                       month: Month, offers: Events) -> None:
    """Send this month's campaign on its 20th day (appended to ``offers``); the treated
    customers' offers take effect from next month (sets ``state.offer_mult`` and ``offer_until``)."""
    act, sent_day = month.act, month.campaign_day
    # still there on the day it is sent: signed up before it, not left before it
    chosen = (rng.random(len(act)) < 0.2) & (people.signup[act] < sent_day) & (month.hi > sent_day)
    idx = np.flatnonzero(chosen)
    cc = act[idx]
    offer = rng.integers(0, len(mx.OFFER_IDS), len(idx))
    treated = rng.random(len(idx)) < 0.8
    propensity = np.where(treated, 0.8 / len(mx.OFFER_IDS), 0.2)
    _send(rng, people, state, month, offers, cc, offer, treated, propensity,
          hold_outs_keep_their_offer=False)


def _send(rng: np.random.Generator, people: Customers, state: CustomerState, month: Month,
          offers: Events, cc: np.ndarray, offer: np.ndarray, treated: np.ndarray,
          propensity: np.ndarray, hold_outs_keep_their_offer: bool) -> None:
    """Send the campaign on the month's 20th day: the treated customers' offers change their
    churn hazard from next month (``state.offer_mult`` and ``offer_until``; a held-out customer's
    offer in force is kept when ``hold_outs_keep_their_offer``), some accept, and a row per
    selected customer is appended to ``offers``."""
    n, sent_day = len(cc), month.campaign_day
    mult = np.ones(n)
    for j, oid in enumerate(mx.OFFER_IDS):
        sel = offer == j
        c = cc[sel]
        mult[sel] = mx.offer_multiplier(oid, people.price_sens[c], state.pain[c], state.eng[c],
                                        people.loyalty[c], people.sleeping_dog[c], state.sat[c])
    mult = np.where(treated, mult, 1.0)
    state.offer_mult[cc] = mult
    until = month.m + mx.OFFER_MONTHS
    state.offer_until[cc] = (np.where(treated, until, state.offer_until[cc])
                             if hold_outs_keep_their_offer else until)
    acc_ts = sent_day + (rng.exponential(4.0, n) * DAY).astype(np.int64)
    accept = (treated & (rng.random(n) < 0.1 + 0.8 * np.clip(1 - mult, 0, 1))
              & (acc_ts < np.minimum(state.churn_ts[cc], month.end_ns)))
    cost = np.array([mx.OFFERS[o]["cost"] for o in mx.OFFER_IDS])[offer]
    offers.add(cust=cc, ts=np.full(n, sent_day), offer=offer, treated=treated,
               accepted=np.where(accept, acc_ts, NAT), cost=np.where(treated, cost, 0.0),
               propensity=propensity)


PROGRAMME_HOLD_OUT = 0.10  # share of the selected customers a programme campaign holds out


def is_programme_month(m: int) -> bool:
    """Programme campaigns run every month after the first."""
    return m >= 1


def programme_campaign(rng: np.random.Generator, people: Customers, state: CustomerState,
                       month: Month, offers: Events) -> None:
    """A month's campaign as a retention programme runs it (see the module): who is picked and
    which offer they get depend on what the business sees; the draws keep ``retention_campaign``'s
    order (who, which offer, treated, accepted)."""
    act, m, sent_day = month.act, month.m, month.campaign_day
    at_risk = sigmoid(2.5 * (0.45 - state.eng[act]) - 0.8 * state.sat[act]
                      + 0.4 * np.minimum(state.pain[act], 3.0) - 1.0)
    pick = np.clip(0.9 * at_risk, 0.01, 0.6)  # about a tenth of the base each month
    free = state.offer_until[act] < m  # no offer in force
    chosen = ((rng.random(len(act)) < pick) & free & (people.signup[act] < sent_day)
              & (month.hi > sent_day))
    idx = np.flatnonzero(chosen)
    cc = act[idx]
    affinity = np.column_stack([1 + 3 * people.price_sens[cc],
                                1 + 2 * np.minimum(state.pain[cc], 1.5),
                                1 + 2 * people.loyalty[cc] * (state.eng[cc] < 0.5)])
    share = affinity / affinity.sum(axis=1, keepdims=True)
    offer = (rng.random(len(idx))[:, None] > np.cumsum(share, axis=1)).sum(axis=1)
    offer = np.minimum(offer, len(mx.OFFER_IDS) - 1)
    treated = rng.random(len(idx)) >= PROGRAMME_HOLD_OUT
    propensity = np.where(treated, (1 - PROGRAMME_HOLD_OUT) * share[np.arange(len(idx)), offer],
                          PROGRAMME_HOLD_OUT)
    _send(rng, people, state, month, offers, cc, offer, treated, propensity,
          hold_outs_keep_their_offer=True)


# the sample's campaign styles (``SampleSpec.campaigns``): which months send one, and how
CAMPAIGN_STYLES = {"quarterly": (is_campaign_month, retention_campaign),
                   "programme": (is_programme_month, programme_campaign)}

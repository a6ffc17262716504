"""The surveys table of the sample: CSAT and CES after a ticket, NPS twice a year.

Engaged customers answer more often; nobody answers after leaving or after the end of the data.
"""

from __future__ import annotations

import numpy as np

from features.sample.state import DAY, HOUR, NAT, Customers, CustomerState, Events, Month, times
from features.sample.tickets import Support

# kind, probability of sending one after a ticket, base score, scale
_TICKET_SURVEYS = (("csat", 0.7, 3.3, (1, 5)), ("ces", 0.4, 3.0, (1, 7)))


def ticket_surveys(rng: np.random.Generator, state: CustomerState, month: Month, support: Support,
                   surveys: Events) -> None:
    """CSAT and CES sent an hour after a ticket closes; scores reflect how it went."""
    act, end_ns = month.act, month.end_ns
    t_idx, closed = support.t_idx, support.closed
    slow, escalated, reopened, fcr = support.slow, support.escalated, support.reopened, support.fcr
    nt = len(t_idx)
    for kind, p_send, base, scale in _TICKET_SURVEYS:
        send = (rng.random(nt) < p_send) & (closed < end_ns)
        idx = np.flatnonzero(send)
        sc = act[t_idx[idx]]
        answered = rng.random(len(idx)) < 0.25 + 0.35 * state.eng[sc]
        sent_ts = closed[idx] + HOUR
        resp = sent_ts + (rng.exponential(2.0, len(idx)) * DAY).astype(np.int64)
        answered &= resp < np.minimum(state.churn_ts[sc], end_ns)
        noise = rng.normal(0, 0.8, len(idx))
        if kind == "csat":
            raw = (base + 0.6 * state.sat[sc] - 0.9 * slow[idx] - 0.6 * escalated[idx]
                   - 0.5 * reopened[idx] + 0.4 * fcr[idx] + noise)
        else:
            raw = (base + 1.2 * slow[idx] + 1.0 * escalated[idx] + 0.9 * reopened[idx]
                   - 0.4 * state.sat[sc] + noise)
        score = np.clip(np.round(raw), *scale)
        surveys.add(cust=sc, kind=np.full(len(idx), kind), sent=sent_ts,
                    response=np.where(answered, resp, NAT),
                    score=np.where(answered, score, np.nan))


def nps_surveys(rng: np.random.Generator, people: Customers, state: CustomerState, month: Month,
                surveys: Events) -> None:
    """NPS for the customers whose half-yearly turn it is (``people.nps_phase``)."""
    act, lo, hi, end_ns = month.act, month.lo, month.hi, month.end_ns
    idx = np.flatnonzero((month.m % 6) == people.nps_phase[act])
    sc = act[idx]
    sent_ts = times(rng, lo[idx], hi[idx])
    resp = sent_ts + (rng.exponential(3.0, len(idx)) * DAY).astype(np.int64)
    answered = ((rng.random(len(idx)) < 0.15 + 0.45 * state.eng[sc])
                & (resp < np.minimum(state.churn_ts[sc], end_ns)))
    score = np.clip(np.round(7.0 + 1.9 * state.sat[sc] + rng.normal(0, 1.3, len(idx))), 0, 10)
    surveys.add(cust=sc, kind=np.full(len(idx), "nps"), sent=sent_ts,
                response=np.where(answered, resp, NAT),
                score=np.where(answered, score, np.nan))


def send_surveys(rng: np.random.Generator, people: Customers, state: CustomerState, month: Month,
                 support: Support, surveys: Events) -> None:
    """This month's surveys: first those after tickets, then NPS (appended to ``surveys``)."""
    ticket_surveys(rng, state, month, support, surveys)
    nps_surveys(rng, people, state, month, surveys)

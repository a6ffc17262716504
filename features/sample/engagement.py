"""The engagement table of the sample: e-mails (also to recent leavers), a monthly usage summary,
web sessions, loyalty redemptions, referrals and app logins, all following engagement.

Loyalty points and reviews come with orders (``orders.py``).
"""

from __future__ import annotations

import numpy as np

from features.sample.state import DAY, Customers, CustomerState, Events, Month, times

ENGAGEMENT_TYPES = ("email_sent", "email_open", "email_click", "web_session", "review",
                    "loyalty_earn", "loyalty_redeem", "referral", "app_login", "active_days")
CODE = {name: code for code, name in enumerate(ENGAGEMENT_TYPES)}  # event_type -> code in ``kind``


def engagement_events(rng: np.random.Generator, people: Customers, state: CustomerState,
                      month: Month, engagement: Events) -> None:
    """This month's engagement events, appended to ``engagement``."""
    ghosts = _recent_leavers(people, state, month)
    _emails(rng, state, month, ghosts, engagement)
    _active_days(rng, state, month, ghosts, engagement)
    _other_events(rng, people, state, month, engagement)


def _recent_leavers(people: Customers, state: CustomerState, month: Month) -> np.ndarray:
    """Customers without a contract who left in the 180 days before this month: still mailed."""
    lo_m = month.lo_m
    return np.flatnonzero(~state.alive & ~people.has_contract & (state.churn_ts < lo_m)
                          & (state.churn_ts > lo_m - 180 * DAY))


def _emails(rng: np.random.Generator, state: CustomerState, month: Month, ghosts: np.ndarray,
            engagement: Events) -> None:
    """E-mails sent, opened (engaged customers more often, leavers rarely) and clicked."""
    act, lo, hi, lo_m, hi_m = month.act, month.lo, month.hi, month.lo_m, month.hi_m
    e = state.eng[act]
    g_lo = np.full(len(ghosts), lo_m)
    g_hi = np.full(len(ghosts), hi_m)
    for cust, elo, ehi, ee, open_p in (
            (act, lo, hi, e, 0.06 + 0.55 * e),
            (ghosts, g_lo, g_hi, np.zeros(len(ghosts)), np.full(len(ghosts), 0.02))):
        k = rng.poisson(0.4 * (ehi - elo) / (hi_m - lo_m))
        i = np.repeat(np.arange(len(cust)), k)
        sent_ts = times(rng, elo[i], ehi[i])
        engagement.add(cust=cust[i], ts=sent_ts, kind=np.full(len(i), CODE["email_sent"]),
                       value=np.full(len(i), np.nan))
        opened_ = rng.random(len(i)) < open_p[i]
        ots_ = sent_ts[opened_] + (rng.exponential(0.5, opened_.sum()) * DAY).astype(np.int64)
        engagement.add(cust=cust[i][opened_], ts=ots_, kind=np.full(opened_.sum(), CODE["email_open"]),
                       value=np.full(opened_.sum(), np.nan))
        clicked = rng.random(opened_.sum()) < 0.1 + 0.3 * ee[i][opened_]
        engagement.add(cust=cust[i][opened_][clicked], ts=ots_[clicked] + 30 * 10**9,
                       kind=np.full(clicked.sum(), CODE["email_click"]),
                       value=np.full(clicked.sum(), np.nan))


def _active_days(rng: np.random.Generator, state: CustomerState, month: Month, ghosts: np.ndarray,
                 engagement: Events) -> None:
    """A usage summary per account and month: days with any activity, which tracks engagement
    and mood; silent leavers' accounts keep reporting zero days until they are closed."""
    act = month.act
    p_day = np.clip(0.05 + 0.8 * state.eng[act] + 0.1 * state.sat[act], 0.01, 0.99)
    days = rng.binomial(np.round(30 * month.frac).astype(np.int64), p_day)
    month_end = np.full(len(act) + len(ghosts), month.hi_m - 10**9)  # the month's last second
    engagement.add(cust=np.concatenate([act, ghosts]), ts=month_end,
                   kind=np.full(len(month_end), CODE["active_days"]),
                   value=np.concatenate([days, np.zeros(len(ghosts))]).astype(float))


def _other_events(rng: np.random.Generator, people: Customers, state: CustomerState, month: Month,
                  engagement: Events) -> None:
    """Web sessions (value: pages), loyalty redemptions (points), referrals and app logins."""
    act, frac, sat, eng = month.act, month.frac, state.sat, state.eng
    e = eng[act]
    for kind_code, lam, value in (
            (CODE["web_session"], 0.8 * e ** 2 * frac, lambda c, r: 1 + r.poisson(1 + 4 * eng[c])),
            (CODE["loyalty_redeem"], (0.03 + 0.12 * e) * people.loyalty[act] * frac,
             lambda c, r: np.round(r.uniform(50, 400, len(c)))),
            (CODE["referral"], (0.004 + 0.02 * np.maximum(sat[act], 0)) * frac, None),
            (CODE["app_login"], 0.6 * e * people.app_user[act] * frac, None)):
        k = rng.poisson(lam)
        i = np.repeat(np.arange(len(act)), k)
        c = act[i]
        engagement.add(cust=c, ts=times(rng, month.lo[i], month.hi[i]),
                       kind=np.full(len(i), kind_code),
                       value=value(c, rng).astype(float) if value else np.full(len(i), np.nan))

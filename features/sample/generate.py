"""The sample CRM: a month-by-month simulation of customers whose satisfaction and engagement drift.

Each month, for every active customer: product problems happen (a few turn into support tickets:
most unhappy customers never complain), tickets resolved slowly, reopened or escalated hurt
satisfaction, surveys reflect it, engagement follows satisfaction with a lag, orders follow
engagement (with seasonality and heavy-tailed spend), each account reports a monthly usage summary
(days active), and the churn hazard follows satisfaction, engagement and support pain. Retention
campaigns are randomised (treated vs. hold-out) and work differently on different customers.

Everything is vectorised over customers; one ``numpy`` generator seeded once makes it repeatable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from features.sample import mechanics as mx

log = logging.getLogger(__name__)

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9


@dataclass(frozen=True)
class SampleSpec:
    customers: int = 20_000
    months: int = 24
    seed: int = 7
    start: str = "2024-01-01"

    def __post_init__(self):
        if self.customers < 1:
            raise ValueError("--customers must be at least 1")
        if self.months < 6:
            raise ValueError("--months must be at least 6 (features look back, labels forward)")


@dataclass
class _Events:
    """Event arrays of one table, appended month by month, concatenated at the end."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **columns: np.ndarray) -> None:
        for k, v in columns.items():
            self.parts.setdefault(k, []).append(v)

    def arrays(self) -> dict[str, np.ndarray]:
        """Concatenated columns; the parts are released column by column (memory at 1M)."""
        out = {}
        for k in list(self.parts):
            a = np.concatenate(self.parts.pop(k))
            out[k] = a.astype(np.int32) if k in _POSITIONS and a.dtype.kind == "i" else a
        return out


_POSITIONS = {"cust", "kind", "offer", "channel", "category"}  # customer positions and codes:
# 32 bits are enough; timestamps, amounts and counts keep their types


@dataclass
class SampleData:
    """Arrays of every table (customer positions in ``cust``), and the truth for evaluation."""

    spec: SampleSpec
    customers: dict[str, np.ndarray]
    tables: dict[str, dict[str, np.ndarray]]
    churn_probability: dict[str, np.ndarray]
    offer_effects: dict[str, np.ndarray]
    end_ns: int


def _month_starts(start: str, months: int) -> np.ndarray:
    m0 = np.datetime64(start, "M")
    return (m0 + np.arange(months + 1)).astype("datetime64[ns]").view(np.int64)


def _times(rng, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def generate(spec: SampleSpec) -> SampleData:
    rng = np.random.default_rng(spec.seed)
    n, months = spec.customers, spec.months
    bounds = _month_starts(spec.start, months)
    start_ns, end_ns = int(bounds[0]), int(bounds[-1])

    # --- who the customers are -------------------------------------------------------------
    existing = rng.random(n) < 0.5
    signup = np.where(
        existing,
        start_ns - (rng.random(n) * 4 * 365 * DAY).astype(np.int64),
        start_ns + (rng.random(n) * 0.75 * (end_ns - start_ns)).astype(np.int64))
    signup = (signup // DAY) * DAY  # a date
    plan = rng.choice(len(mx.PLANS), n, p=[0.5, 0.35, 0.15])
    segment = rng.choice(len(mx.SEGMENTS), n, p=[0.8, 0.2])
    region = rng.choice(len(mx.REGIONS), n)
    has_contract = rng.random(n) < 0.3
    freq = rng.gamma(1.3, 0.75 / 1.3, n) * np.where(segment == 1, 1.6, 1.0)
    spend_mu = np.exp(rng.normal(3.4, 0.75, n)) * np.array([1.0, 1.4, 2.2])[plan]
    complain = rng.beta(1.3, 5.0, n)  # most unhappy customers never complain
    price_sens = rng.beta(2.0, 4.0, n) * np.where(plan == 0, 1.3, 0.8)
    price_sens = np.clip(price_sens, 0, 1)
    app_user = rng.random(n) < 0.5
    loyalty = rng.random(n) < 0.6
    sat_mu = rng.normal(0.65, 0.6, n)
    eng_trait = rng.normal(0.0, 0.8, n)
    # dormant contract customers: a contact reminds them to cancel
    sleeping_dog = has_contract & (eng_trait < -0.5) & (rng.random(n) < 0.7)
    nps_phase = rng.integers(0, 6, n)
    problem_rate = 0.11 * np.array([1.2, 1.0, 0.8])[plan]

    sat = sat_mu + rng.normal(0, 0.3, n)
    eng = np.clip(mx.sigmoid(1.3 * sat + eng_trait) + rng.normal(0, 0.05, n), 0, 1)
    alive = np.ones(n, dtype=bool)
    churn_ts = np.full(n, np.iinfo(np.int64).max)
    cancel = np.full(n, np.iinfo(np.int64).min)
    pain = np.zeros(n)
    offer_mult = np.ones(n)
    offer_until = np.full(n, -1)
    season = {11: 0.3, 12: 0.35, 1: -0.15, 2: -0.1}
    month_no = (np.datetime64(spec.start, "M") + np.arange(months)).astype(int) % 12 + 1
    price_shock_month = months // 2

    orders, tickets, surveys, engage, offers = _Events(), _Events(), _Events(), _Events(), _Events()
    truth = _Events()

    for m in range(months):
        lo_m, hi_m = int(bounds[m]), int(bounds[m + 1])
        act = np.flatnonzero(alive & (signup < hi_m))
        tenure = (lo_m - signup[act]) / DAY
        hazard = mx.monthly_hazard(sat[act], eng[act], tenure, has_contract[act], pain[act])
        hazard = np.clip(hazard * np.where(offer_until[act] >= m, offer_mult[act], 1.0), 0, 1)
        truth.add(cust=act, month=np.full(len(act), lo_m), probability=hazard)
        churned = rng.random(len(act)) < hazard
        lo = np.maximum(signup[act], lo_m)
        hi = np.full(len(act), hi_m)
        ct = _times(rng, lo, hi)
        hi = np.where(churned, ct, hi)
        churn_ts[act[churned]] = ct[churned]
        frac = (hi - lo) / (hi_m - lo_m)  # share of the month the customer was there

        # --- product problems and support tickets -------------------------------------------
        k = rng.poisson(problem_rate[act] * frac)
        p_cust = np.repeat(np.arange(len(act)), k)
        ticketed = rng.random(len(p_cust)) < complain[act[p_cust]]
        impact = np.bincount(p_cust[~ticketed], minlength=len(act)) * -0.35
        t_idx = p_cust[ticketed]
        nt = len(t_idx)
        opened = _times(rng, lo[t_idx], hi[t_idx])
        escalated = rng.random(nt) < 0.12
        reopened = rng.random(nt) < 0.10
        hours = rng.lognormal(np.log(20), 1.0, nt) * np.where(escalated, 2.0, 1.0)
        slow = hours > 72
        fcr = ~escalated & ~reopened & (rng.random(nt) < 0.6)
        complaint = rng.random(nt) < 0.12 + 0.35 * slow + 0.2 * escalated
        closed = opened + (hours * HOUR).astype(np.int64)
        hurt = (-0.15 - 0.35 * slow - 0.35 * escalated - 0.35 * reopened - 0.35 * complaint
                + 0.10 * fcr)
        impact += np.bincount(t_idx, weights=hurt, minlength=len(act))
        bad = (slow.astype(int) + escalated + reopened + 2 * complaint).astype(float)
        pain_add = np.bincount(t_idx, weights=bad, minlength=len(act))
        tickets.add(cust=act[t_idx], opened=opened,
                    closed=np.where(closed < end_ns, closed, np.iinfo(np.int64).min),
                    channel=rng.choice(3, nt, p=[0.4, 0.35, 0.25]),
                    category=rng.integers(0, 4, nt), complaint=complaint, escalated=escalated,
                    reopened=reopened, fcr=fcr)
        # surveys after a ticket: CSAT and CES
        for kind, p_send, base, scale in (("csat", 0.7, 3.3, (1, 5)), ("ces", 0.4, 3.0, (1, 7))):
            send = (rng.random(nt) < p_send) & (closed < end_ns)
            idx = np.flatnonzero(send)
            sc = act[t_idx[idx]]
            answered = rng.random(len(idx)) < 0.25 + 0.35 * eng[sc]
            sent_ts = closed[idx] + HOUR
            resp = sent_ts + (rng.exponential(2.0, len(idx)) * DAY).astype(np.int64)
            answered &= resp < np.minimum(churn_ts[sc], end_ns)
            noise = rng.normal(0, 0.8, len(idx))
            if kind == "csat":
                raw = (base + 0.6 * sat[sc] - 0.9 * slow[idx] - 0.6 * escalated[idx]
                       - 0.5 * reopened[idx] + 0.4 * fcr[idx] + noise)
            else:
                raw = (base + 1.2 * slow[idx] + 1.0 * escalated[idx] + 0.9 * reopened[idx]
                       - 0.4 * sat[sc] + noise)
            score = np.clip(np.round(raw), *scale)
            surveys.add(cust=sc, kind=np.full(len(idx), kind), sent=sent_ts,
                        response=np.where(answered, resp, np.iinfo(np.int64).min),
                        score=np.where(answered, score, np.nan))
        # NPS twice a year
        idx = np.flatnonzero((m % 6) == nps_phase[act])
        sc = act[idx]
        sent_ts = _times(rng, lo[idx], hi[idx])
        resp = sent_ts + (rng.exponential(3.0, len(idx)) * DAY).astype(np.int64)
        answered = ((rng.random(len(idx)) < 0.15 + 0.45 * eng[sc])
                    & (resp < np.minimum(churn_ts[sc], end_ns)))
        score = np.clip(np.round(7.0 + 1.9 * sat[sc] + rng.normal(0, 1.3, len(idx))), 0, 10)
        surveys.add(cust=sc, kind=np.full(len(idx), "nps"), sent=sent_ts,
                    response=np.where(answered, resp, np.iinfo(np.int64).min),
                    score=np.where(answered, score, np.nan))

        # --- orders follow engagement, with seasonality -------------------------------------
        rate = freq[act] * (0.3 + 1.0 * eng[act]) * (1 + season.get(int(month_no[m]), 0.0)) * frac
        k = rng.poisson(rate)
        o_idx = np.repeat(np.arange(len(act)), k)
        no = len(o_idx)
        oc = act[o_idx]
        ots = _times(rng, lo[o_idx], hi[o_idx])
        amount = np.round(spend_mu[oc] * rng.lognormal(0, 0.45, no), 2)
        discounted = rng.random(no) < 0.02 + 0.8 * price_sens[oc]
        discount = np.where(discounted, np.round(amount * rng.uniform(0.05, 0.25, no), 2), 0.0)
        orders.add(cust=oc, ts=ots, amount=amount, discount=discount,
                   quantity=1 + rng.poisson(1.0, no), channel=rng.choice(3, no, p=[.5, .3, .2]))
        earn = loyalty[oc]
        engage.add(cust=oc[earn], ts=ots[earn] + 60 * 10**9, kind=np.full(earn.sum(), 5),
                   value=np.round(amount[earn]))
        rev = rng.random(no) < 0.03 + 0.03 * np.abs(sat[oc])
        rts = ots[rev] + (rng.exponential(5.0, rev.sum()) * DAY).astype(np.int64)
        keep = rts < np.minimum(churn_ts[oc[rev]], end_ns)
        rating = np.clip(np.round(3.4 + 0.9 * sat[oc[rev]] + rng.normal(0, 0.8, rev.sum())), 1, 5)
        engage.add(cust=oc[rev][keep], ts=rts[keep], kind=np.full(keep.sum(), 4),
                   value=rating[keep])

        # --- engagement events ----------------------------------------------------------------
        e = eng[act]
        ghosts = np.flatnonzero(~alive & ~has_contract & (churn_ts < lo_m)
                                & (churn_ts > lo_m - 180 * DAY))  # still mailed after leaving
        g_lo = np.full(len(ghosts), lo_m)
        g_hi = np.full(len(ghosts), hi_m)
        for cust, elo, ehi, ee, open_p in (
                (act, lo, hi, e, 0.06 + 0.55 * e),
                (ghosts, g_lo, g_hi, np.zeros(len(ghosts)), np.full(len(ghosts), 0.02))):
            k = rng.poisson(0.4 * (ehi - elo) / (hi_m - lo_m))
            i = np.repeat(np.arange(len(cust)), k)
            sent_ts = _times(rng, elo[i], ehi[i])
            engage.add(cust=cust[i], ts=sent_ts, kind=np.zeros(len(i), np.int64),
                       value=np.full(len(i), np.nan))
            opened_ = rng.random(len(i)) < open_p[i]
            ots_ = sent_ts[opened_] + (rng.exponential(0.5, opened_.sum()) * DAY).astype(np.int64)
            engage.add(cust=cust[i][opened_], ts=ots_, kind=np.full(opened_.sum(), 1),
                       value=np.full(opened_.sum(), np.nan))
            clicked = rng.random(opened_.sum()) < 0.1 + 0.3 * ee[i][opened_]
            engage.add(cust=cust[i][opened_][clicked], ts=ots_[clicked] + 30 * 10**9,
                       kind=np.full(clicked.sum(), 2), value=np.full(clicked.sum(), np.nan))
        # a usage summary per account and month: days with any activity, which tracks engagement
        # and mood; silent leavers' accounts keep reporting zero days until they are closed
        p_day = np.clip(0.05 + 0.8 * e + 0.1 * sat[act], 0.01, 0.99)
        days = rng.binomial(np.round(30 * frac).astype(np.int64), p_day)
        month_end = np.full(len(act) + len(ghosts), hi_m - 10**9)  # the month's last second
        engage.add(cust=np.concatenate([act, ghosts]), ts=month_end,
                   kind=np.full(len(month_end), 9),
                   value=np.concatenate([days, np.zeros(len(ghosts))]).astype(float))
        for kind_code, lam, value in (
                (3, 0.8 * e ** 2 * frac, lambda c, r: 1 + r.poisson(1 + 4 * eng[c])),
                (6, (0.03 + 0.12 * e) * loyalty[act] * frac,
                 lambda c, r: np.round(r.uniform(50, 400, len(c)))),
                (7, (0.004 + 0.02 * np.maximum(sat[act], 0)) * frac, None),
                (8, 0.6 * e * app_user[act] * frac, None)):
            k = rng.poisson(lam)
            i = np.repeat(np.arange(len(act)), k)
            c = act[i]
            engage.add(cust=c, ts=_times(rng, lo[i], hi[i]), kind=np.full(len(i), kind_code),
                       value=value(c, rng).astype(float) if value else np.full(len(i), np.nan))

        # --- a randomised retention campaign every quarter ----------------------------------
        if m % 3 == 2:
            sent_day = lo_m + 19 * DAY
            chosen = (rng.random(len(act)) < 0.2) & (signup[act] < sent_day) & \
                     (np.where(churned, ct, hi_m) > sent_day)
            idx = np.flatnonzero(chosen)
            cc = act[idx]
            offer = rng.integers(0, len(mx.OFFER_IDS), len(idx))
            treated = rng.random(len(idx)) < 0.8
            mult = np.ones(len(idx))
            for j, oid in enumerate(mx.OFFER_IDS):
                sel = offer == j
                c = cc[sel]
                mult[sel] = mx.offer_multiplier(oid, price_sens[c], pain[c], eng[c], loyalty[c],
                                                sleeping_dog[c], sat[c])
            mult = np.where(treated, mult, 1.0)
            offer_mult[cc] = mult
            offer_until[cc] = m + mx.OFFER_MONTHS
            acc_ts = sent_day + (rng.exponential(4.0, len(idx)) * DAY).astype(np.int64)
            accept = (treated & (rng.random(len(idx)) < 0.1 + 0.8 * np.clip(1 - mult, 0, 1))
                      & (acc_ts < np.minimum(churn_ts[cc], end_ns)))
            cost = np.array([mx.OFFERS[o]["cost"] for o in mx.OFFER_IDS])[offer]
            offers.add(cust=cc, ts=np.full(len(idx), sent_day), offer=offer, treated=treated,
                       accepted=np.where(accept, acc_ts, np.iinfo(np.int64).min),
                       cost=np.where(treated, cost, 0.0))

        # --- state for next month -----------------------------------------------------------
        shock = -0.9 * price_sens[act] * (plan[act] == 0) if m == price_shock_month else 0.0
        sat[act] = (0.85 * sat[act] + 0.15 * sat_mu[act] + rng.normal(0, 0.22, len(act))
                    + impact + shock)
        pain[act] = 0.6 * pain[act] + pain_add
        eng[act] = np.clip(0.75 * eng[act] + 0.25 * mx.sigmoid(1.3 * sat[act] + eng_trait[act])
                           + rng.normal(0, 0.04, len(act)), 0, 1)
        gone = act[churned]
        alive[gone] = False
        cancel[gone[has_contract[gone]]] = (churn_ts[gone[has_contract[gone]]] // DAY) * DAY
        log.debug("month %d: %d active, %.3f churned", m, len(act), churned.mean())

    # --- the truth: offer effects if sent at the end of the data ----------------------------
    still = np.flatnonzero(alive & (signup < end_ns))
    tenure = (end_ns - signup[still]) / DAY
    h = mx.monthly_hazard(sat[still], eng[still], tenure, has_contract[still], pain[still])
    base = mx.churn_within(h, mx.OFFER_MONTHS)
    effects = _Events()
    for j, oid in enumerate(mx.OFFER_IDS):
        c = still
        mult = mx.offer_multiplier(oid, price_sens[c], pain[c], eng[c], loyalty[c],
                                   sleeping_dog[c], sat[c])
        effects.add(cust=c, offer=np.full(len(c), j),
                    effect=mx.churn_within(h * mult, mx.OFFER_MONTHS) - base)

    customers = dict(signup=signup, cancel=cancel, plan=plan, segment=segment, region=region,
                     has_contract=has_contract)
    return SampleData(spec, customers,
                      dict(orders=orders.arrays(), tickets=tickets.arrays(),
                           surveys=surveys.arrays(), engagement=engage.arrays(),
                           offers=offers.arrays()),
                      truth.arrays(), effects.arrays(), end_ns)


ENGAGEMENT_TYPES = ("email_sent", "email_open", "email_click", "web_session", "review",
                    "loyalty_earn", "loyalty_redeem", "referral", "app_login", "active_days")

"""Who leaves each month, and how the survivors' satisfaction and engagement move on.

``start_month`` opens a month: it draws who leaves (recording the true hazard) and when.
``end_month`` closes it: satisfaction, support pain and engagement carry over, leavers are gone.
"""

from __future__ import annotations

import numpy as np

from features.sample import mechanics as mx
from features.sample.state import DAY, Calendar, Customers, CustomerState, Events, Month, times


def start_month(rng: np.random.Generator, people: Customers, state: CustomerState, cal: Calendar,
                m: int, truth: Events) -> Month:
    """Draw this month's leavers and their leaving times (sets ``state.churn_ts``).

    The hazard each active customer faced goes to ``truth`` (``_truth/churn_probability``).
    """
    lo_m, hi_m = int(cal.bounds[m]), int(cal.bounds[m + 1])
    act = np.flatnonzero(state.alive & (people.signup < hi_m))
    tenure = (lo_m - people.signup[act]) / DAY
    hazard = mx.monthly_hazard(state.sat[act], state.eng[act], tenure, people.has_contract[act],
                               state.pain[act])
    in_force = state.offer_until[act] >= m
    hazard = np.clip(hazard * np.where(in_force, state.offer_mult[act], 1.0), 0, 1)
    truth.add(cust=act, month=np.full(len(act), lo_m), probability=hazard)
    churned = rng.random(len(act)) < hazard
    lo = np.maximum(people.signup[act], lo_m)
    hi = np.full(len(act), hi_m)
    ct = times(rng, lo, hi)
    hi = np.where(churned, ct, hi)
    state.churn_ts[act[churned]] = ct[churned]
    frac = (hi - lo) / (hi_m - lo_m)  # share of the month the customer was there
    return Month(m=m, lo_m=lo_m, hi_m=hi_m, end_ns=cal.end_ns, act=act, churned=churned, lo=lo,
                 hi=hi, frac=frac)


def end_month(rng: np.random.Generator, people: Customers, state: CustomerState, month: Month,
              impact: np.ndarray, pain_add: np.ndarray, price_shock: bool) -> None:
    """Carry the state over to next month (in place).

    ``impact`` moves satisfaction and ``pain_add`` adds support pain (both from this month's
    problems and tickets); in the ``price_shock`` month price-sensitive basic-plan customers sour.
    Contract customers who left get a cancel date.
    """
    act = month.act
    shock = -0.9 * people.price_sens[act] * (people.plan[act] == 0) if price_shock else 0.0
    state.sat[act] = (0.85 * state.sat[act] + 0.15 * people.sat_mu[act]
                      + rng.normal(0, 0.22, len(act)) + impact + shock)
    state.pain[act] = 0.6 * state.pain[act] + pain_add
    state.eng[act] = np.clip(0.75 * state.eng[act]
                             + 0.25 * mx.sigmoid(1.3 * state.sat[act] + people.eng_trait[act])
                             + rng.normal(0, 0.04, len(act)), 0, 1)
    gone = act[month.churned]
    state.alive[gone] = False
    leavers = gone[people.has_contract[gone]]
    state.cancel[leavers] = (state.churn_ts[leavers] // DAY) * DAY

"""The customers table of the sample: who the customers are, and how they start out."""

from __future__ import annotations

import numpy as np

from features.sample import mechanics as mx
from features.sample.state import DAY, NAT, Calendar, Customers, CustomerState


def draw_customers(rng: np.random.Generator, n: int, cal: Calendar) -> Customers:
    """Half the customers are there before the data starts, the rest sign up during it."""
    start_ns, end_ns = cal.start_ns, cal.end_ns
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
    return Customers(signup=signup, plan=plan, segment=segment, region=region,
                     has_contract=has_contract, freq=freq, spend_mu=spend_mu, complain=complain,
                     price_sens=price_sens, app_user=app_user, loyalty=loyalty, sat_mu=sat_mu,
                     eng_trait=eng_trait, sleeping_dog=sleeping_dog, nps_phase=nps_phase,
                     problem_rate=problem_rate)


def initial_state(rng: np.random.Generator, people: Customers) -> CustomerState:
    """Satisfaction near each customer's own level, engagement following it; nobody has left."""
    n = len(people.signup)
    sat = people.sat_mu + rng.normal(0, 0.3, n)
    eng = np.clip(mx.sigmoid(1.3 * sat + people.eng_trait) + rng.normal(0, 0.05, n), 0, 1)
    return CustomerState(
        sat=sat, eng=eng, alive=np.ones(n, dtype=bool),
        churn_ts=np.full(n, np.iinfo(np.int64).max), cancel=np.full(n, NAT), pain=np.zeros(n),
        offer_mult=np.ones(n), offer_until=np.full(n, -1))


def customer_columns(people: Customers, state: CustomerState) -> dict[str, np.ndarray]:
    """The customers table's arrays at the end of the simulation."""
    return dict(signup=people.signup, cancel=state.cancel, plan=people.plan,
                segment=people.segment, region=people.region, has_contract=people.has_contract)

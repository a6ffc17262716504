"""The hidden truth for evaluation (``_truth/offer_effects``): what each offer would do to each
remaining customer if sent at the end of the data. The monthly churn probabilities
(``_truth/churn_probability``) are recorded as the simulation runs (``churn.start_month``)."""

from __future__ import annotations

import numpy as np

from features.sample import mechanics as mx
from features.sample.state import DAY, Customers, CustomerState, Events


def offer_effects(people: Customers, state: CustomerState, end_ns: int) -> Events:
    """Change in the probability of churning within ``OFFER_MONTHS``, per customer and offer."""
    still = np.flatnonzero(state.alive & (people.signup < end_ns))
    tenure = (end_ns - people.signup[still]) / DAY
    h = mx.monthly_hazard(state.sat[still], state.eng[still], tenure, people.has_contract[still],
                          state.pain[still])
    base = mx.churn_within(h, mx.OFFER_MONTHS)
    effects = Events()
    for j, oid in enumerate(mx.OFFER_IDS):
        c = still
        mult = mx.offer_multiplier(oid, people.price_sens[c], state.pain[c], state.eng[c],
                                   people.loyalty[c], people.sleeping_dog[c], state.sat[c])
        effects.add(cust=c, offer=np.full(len(c), j),
                    effect=mx.churn_within(h * mult, mx.OFFER_MONTHS) - base)
    return effects

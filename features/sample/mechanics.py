"""The causal mechanics of the sample CRM: what drives churn, and how offers change it.

Kept apart from the simulation loop so that the truth written to ``_truth/`` and the simulation
use the very same formulas.
"""

from __future__ import annotations

import numpy as np

from features.numeric import sigmoid

# The default offer catalogue's ids, costs and what each one addresses.
OFFERS: dict[str, dict] = {
    "discount_10": {"cost": 10.0, "addresses": "price"},
    "service_call": {"cost": 15.0, "addresses": "support"},
    "loyalty_bonus": {"cost": 5.0, "addresses": "engagement"},
}
OFFER_IDS = tuple(OFFERS)
OFFER_MONTHS = 3  # an offer changes the churn hazard for this many months after it is sent

PLANS = ("basic", "standard", "premium")
SEGMENTS = ("consumer", "business")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("web", "store", "app")
TICKET_CHANNELS = ("phone", "email", "chat")
TICKET_CATEGORIES = ("billing", "delivery", "product", "account")


def monthly_hazard(satisfaction: np.ndarray, engagement: np.ndarray, tenure_days: np.ndarray,
                   has_contract: np.ndarray, support_pain: np.ndarray) -> np.ndarray:
    """Probability of leaving within a month, before any offer.

    Low satisfaction and fading engagement drive it; recent bad support experiences (slow,
    escalated, reopened tickets, complaints) add to it; new customers are more fragile; contracts
    hold some customers back.
    """
    logit = (-2.45 - 1.05 * satisfaction + 2.6 * (0.45 - engagement)
             + 0.45 * np.minimum(support_pain, 4.0)
             + 0.7 * (tenure_days < 90) - 0.45 * has_contract)
    return sigmoid(logit)


def offer_multiplier(offer: str, price_sensitivity: np.ndarray, support_pain: np.ndarray,
                     engagement: np.ndarray, loyalty_member: np.ndarray, sleeping_dog: np.ndarray,
                     satisfaction: np.ndarray) -> np.ndarray:
    """Factor on the monthly hazard while an offer is in force (< 1 helps, > 1 harms).

    Persuadable customers are those whose reason to leave the offer addresses; lost causes
    (very unhappy) barely react; sleeping dogs are reminded to leave by any contact.
    """
    if offer == "discount_10":
        gain = 0.9 * price_sensitivity
    elif offer == "service_call":
        gain = 0.65 * np.minimum(support_pain / 1.5, 1.0)
    elif offer == "loyalty_bonus":
        gain = 0.55 * loyalty_member * np.clip(1.0 - engagement * 1.4, 0.0, 1.0)
    else:
        raise KeyError(f"unknown offer {offer}")
    gain = np.where(satisfaction < -1.2, 0.25 * gain, gain)
    return np.where(sleeping_dog, 1.7, 1.0 - gain)


def churn_within(hazard: np.ndarray, months: int) -> np.ndarray:
    return 1.0 - (1.0 - np.clip(hazard, 0.0, 1.0)) ** months

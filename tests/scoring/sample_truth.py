"""A world whose truth is known, from the generated sample's ``_truth/`` (for campaign tests).

The customers still there at the end of the data, each with their true churn probability over
the offers' horizon (from the last month's true hazard), every offer's true effect on it
(``_truth/offer_effects``) and their value (from their orders). Campaign outcomes are then drawn
from the truth, so what a readout or an off-policy estimate should find is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.sample.mechanics import OFFER_MONTHS
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import Catalogue
from scoring.offers.ope import LoggedCampaigns, action_rewards, rewards
from scoring.offers.policy import NO_OFFER, Customers, options
from scoring.offers.value import ValueConfig, customer_value


@dataclass(frozen=True)
class TruthWorld:
    ids: np.ndarray
    base: np.ndarray  # true churn probability over the horizon, no offer
    effects: np.ndarray  # (customers, offers): true change in it per offer (negative helps)
    value: np.ndarray

    def customers(self) -> Customers:
        return Customers(self.base, self.value, np.full(len(self.base), np.nan))

    def outcome(self, rng: np.random.Generator, action: np.ndarray) -> np.ndarray:
        """Who churns after each customer got ``action`` (an offer index or NO_OFFER)."""
        eff = np.where(action == NO_OFFER, 0.0,
                       self.effects[np.arange(len(action)), np.maximum(action, 0)])
        return (rng.random(len(action)) < np.clip(self.base + eff, 0, 1)).astype(float)

    def true_value(self, action: np.ndarray, costs: np.ndarray) -> float:
        """The exact expected net value per customer of a policy's actions."""
        eff = np.where(action == NO_OFFER, 0.0,
                       self.effects[np.arange(len(action)), np.maximum(action, 0)])
        spent = np.where(action == NO_OFFER, 0.0, costs[np.maximum(action, 0)])
        return float(np.mean(self.value * (1 - self.base - eff) - spent))


def truth_world(sample_dir: Path, catalogue: Catalogue) -> TruthWorld:
    truth = Path(sample_dir) / "_truth"
    effects = pd.read_parquet(truth / "offer_effects.parquet").pivot(
        index="customer_id", columns="offer_id", values="effect").reindex(columns=catalogue.ids)
    hazard = pd.read_parquet(truth / "churn_probability.parquet")
    last = hazard[hazard["month"] == hazard["month"].max()].set_index("customer_id")["probability"]
    ids = effects.index.intersection(last.index)
    base = 1 - (1 - last.reindex(ids).to_numpy()) ** OFFER_MONTHS
    orders = pd.read_parquet(Path(sample_dir) / "orders.parquet")
    recent = orders[orders["order_ts"] >= orders["order_ts"].max() - pd.Timedelta(days=365)]
    stats = recent.groupby("customer_id")["amount"].agg(["size", "mean"]).reindex(ids)
    value = customer_value(stats["size"].fillna(0).to_numpy(), stats["mean"].fillna(0).to_numpy(),
                           ValueConfig())
    return TruthWorld(np.asarray(ids), base, effects.reindex(ids).to_numpy(), value)


def logging_probabilities(base: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A non-uniform logging policy, as programmes run: valuable customers are more often sent an
    offer, riskier ones more often the discount. Columns: nothing, then the catalogue's offers."""
    v = pd.Series(value).rank(pct=True).to_numpy()
    r = pd.Series(base).rank(pct=True).to_numpy()
    none = 0.7 - 0.45 * v
    discount = (1 - none) * (0.2 + 0.6 * r)
    rest = (1 - none - discount) / 2
    return np.column_stack([none, discount, rest, rest])


@dataclass(frozen=True)
class OpeWorld:
    """Policies to judge on a truth world, their true values, and a rough reward model."""

    catalogue: Catalogue
    world: TruthWorld
    policies: dict[str, np.ndarray]
    truth: dict[str, float]
    q: np.ndarray

    def __iter__(self):  # catalogue, world, policies, truth, q
        return iter((self.catalogue, self.world, self.policies, self.truth, self.q))


def ope_world(w: TruthWorld, catalogue: Catalogue) -> OpeWorld:
    """The current policy (allocation of noisy, optimistic effects within a budget of a tenth of
    the base x 10), risk-only (the riskiest get the first offer) and no offer."""
    costs = catalogue.costs
    rng = np.random.default_rng(0)
    noisy = w.effects + rng.normal(0, 0.01, w.effects.shape) - 0.05 * w.base[:, None]
    c = w.customers()
    budget = 0.1 * len(w.base) * 10.0
    current = allocate(options(c, {o: noisy[:, j] for j, o in enumerate(catalogue.ids)},
                               catalogue), catalogue, budget).offer
    risk = np.full(len(w.base), NO_OFFER)
    risk[np.argsort(-w.base)[: int(budget // costs[0])]] = 0
    policies = {"current": current, "risk-only": risk,
                "no offer": np.full(len(w.base), NO_OFFER)}
    truth = {k: w.true_value(a, costs) for k, a in policies.items()}
    # a deliberately rough reward model for DR: risk overstated by 30%, the noisy effects
    q = action_rewards(np.clip(1.3 * w.base, 0, 1), noisy, w.value, costs)
    return OpeWorld(catalogue, w, policies, truth, q)


def draw_log(world: OpeWorld, seed: int) -> LoggedCampaigns:
    """A logged campaign: actions drawn by ``logging_probabilities``, outcomes from the truth."""
    w = world.world
    rng = np.random.default_rng(seed)
    probs = logging_probabilities(w.base, w.value)
    draw = (rng.random(len(w.base))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    action = draw - 1  # column 0 = nothing = NO_OFFER
    y = w.outcome(rng, action)
    return LoggedCampaigns(action, probs[np.arange(len(action)), draw],
                           rewards(y, w.value, action, world.catalogue.costs), world.q)

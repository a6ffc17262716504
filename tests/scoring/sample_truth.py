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
from scoring.offers.catalogue import Catalogue
from scoring.offers.policy import NO_OFFER, Customers
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

"""One arena of the offers benchmark: a generated sample, the churn model, the past campaigns and
the active base at the end of the data, with the truth every plan is judged on.

Everything a targeting method may use is here (campaign rows with their observable outcome, the
base's features and churn scores, customer value); the truth (``truth``: each base customer's
true change in churn probability per offer, from ``_truth/offer_effects``) is only for judging and
for the yardstick. Arenas are cached on disk (pickle) so the effect model can be iterated on
without regenerating the data.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.io import load_crm, write_atomic
from features.sample import SampleSpec, generate, write_sample
from scoring.offers.catalogue import Catalogue
from scoring.offers.policy import Customers
from scoring.offers.value import ValueConfig, customer_value, value_features
from scoring.scorer import ChurnScorer
from training.config import TrainConfig
from training.dataset import from_feature_set
from training.model import fit_churn_model
from training.uplift import CampaignData, campaign_data

CUTOFFS = ("2024-07-01", "2024-10-01", "2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")


@dataclass
class Arena:
    seed: int
    customers_generated: int
    scorer: ChurnScorer
    data: CampaignData  # past campaigns: features at each campaign, treated flag, outcome
    x: np.ndarray  # the active base's model features at the end of the data
    p: np.ndarray  # their churn probability
    value: np.ndarray  # their value
    customers: Customers
    truth: np.ndarray  # (base, offers): true change in churn probability (negative helps)
    data_end: str
    seconds: float


def build_arena(customers: int, seed: int, catalogue: Catalogue) -> Arena:
    t0 = time.perf_counter()
    features, labels, config = FeatureConfig(), LabelConfig(), TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        write_sample(generate(SampleSpec(customers=customers, months=24, seed=seed)), tmp)
        crm = load_crm(tmp)
        effects_truth = pd.read_parquet(Path(tmp) / "_truth" / "offer_effects.parquet")
        scorer, _ = fit_churn_model(from_feature_set(
            build_feature_set(crm, [pd.Timestamp(c) for c in CUTOFFS], features, labels), config),
            config)
        data = campaign_data(crm, scorer, features, labels, catalogue.uplift)
        base = build_feature_set(crm, [crm.data_end.normalize() + pd.Timedelta(days=1)],
                                 features, labels).frame
    x = scorer.matrix(base)
    p = scorer.predict(x)
    vcfg = ValueConfig()
    orders, order_value = value_features(vcfg)
    value = customer_value(base[orders], base[order_value], vcfg)
    people = Customers(p, value, base["days_since_last_offer"].to_numpy(float),
                       base["segment"].to_numpy(), base["plan"].to_numpy(),
                       base["has_contract"].to_numpy())
    truth = effects_truth.pivot(index="customer_id", columns="offer_id", values="effect") \
        .reindex(index=base["customer_id"], columns=catalogue.ids).fillna(0.0).to_numpy()
    return Arena(seed, customers, scorer, data, x, p, value, people, truth,
                 str(crm.data_end.date()), time.perf_counter() - t0)


def _pickle_to(obj, path: Path) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f)


def arena(customers: int, seed: int, catalogue: Catalogue, cache: Path | None) -> Arena:
    """The arena for (customers, seed), from ``cache`` when it is there."""
    path = cache / f"arena-{customers}-{seed}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    out = build_arena(customers, seed, catalogue)
    if path is not None:
        write_atomic(path, lambda tmp: _pickle_to(out, tmp))
    return out

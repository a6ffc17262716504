"""Offer effects at scoring time: a learnt reason-matched model per offer, or the catalogue's prior.

An offer works on the customers whose churn risk comes from what the offer addresses. For each
customer the churn model's feature contributions are summed per reason (price: RFM features,
support: support and voice-of-customer features, engagement: engagement features; positive parts
only) into a score ``z``. The learnt model is a logistic model with the churn model's calibrated
log-odds as offset:

    logit P(churn | sent) = logit p(x) + c + a + b * z_reason(x)
    logit P(churn | not sent) = logit p(x) + c

so the effect of sending is ``sigmoid(logit p + c + a + b z) - sigmoid(logit p + c)`` (negative
helps). Three numbers per offer, learnt from randomised campaigns: little data goes a long way.
The effect is then shrunk by ``scale``: the churn cut observed on a held-out campaign divided by
the cut the model predicted there (0..1), so an offer that did not work out of sample is not
trusted to work now.
An offer without enough history uses its prior: ``-prior_effect x p``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from serving.offers.catalogue import Catalogue

LEARNT, PRIOR = "learnt", "prior"
REASON_FAMILIES = {"price": ("rfm",), "support": ("support", "voice"),
                   "engagement": ("engagement", "offers"), "any": ()}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def reason_scores(contributions: np.ndarray, families: list[str]) -> dict[str, np.ndarray]:
    """Per reason, the sum of the positive contributions of the features of its families."""
    contrib = np.clip(contributions[:, : len(families)], 0, None)
    fam = np.asarray(families)
    out = {}
    for reason, fams in REASON_FAMILIES.items():
        cols = np.isin(fam, fams)
        out[reason] = contrib[:, cols].sum(axis=1) if cols.any() else np.zeros(len(contrib))
    return out


@dataclass
class OfferEffectModel:
    offer_id: str
    source: str  # LEARNT | PRIOR
    note: str = ""
    reason: str = "any"
    c: float = 0.0
    a: float = 0.0
    b: float = 0.0
    scale: float = 1.0  # shrinkage from the held-out campaign (observed / predicted cut, 0..1)
    metrics: dict = field(default_factory=dict)

    def effect(self, p_churn: np.ndarray, z: dict[str, np.ndarray] | None,
               prior_effect: float) -> np.ndarray:
        """Change in churn probability per customer if the offer is sent (negative helps)."""
        p = np.asarray(p_churn, dtype=float)
        if self.source != LEARNT:
            return -prior_effect * p
        base = _logit(p) + self.c
        zr = z[self.reason] if (z is not None and self.reason in z) else np.zeros(len(p))
        return self.scale * (_sigmoid(base + self.a + self.b * zr) - _sigmoid(base))


@dataclass
class UpliftModels:
    models: dict[str, OfferEffectModel]

    @property
    def needs_contributions(self) -> bool:
        return any(m.source == LEARNT and m.reason != "any" and m.scale > 0
                   for m in self.models.values())

    def effects(self, p_churn: np.ndarray, z: dict[str, np.ndarray] | None,
                catalogue: Catalogue) -> dict[str, np.ndarray]:
        out = {}
        for offer in catalogue.offers:
            model = self.models.get(offer.id) or OfferEffectModel(offer.id, PRIOR,
                                                                  "not in the trained models")
            out[offer.id] = model.effect(p_churn, z, offer.prior_effect)
        return out

    def sources(self) -> dict[str, str]:
        return {k: m.source for k, m in self.models.items()}

    @classmethod
    def priors_only(cls, catalogue: Catalogue, note: str) -> UpliftModels:
        return cls({o.id: OfferEffectModel(o.id, PRIOR, note) for o in catalogue.offers})

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "uplift.json").write_text(
            json.dumps({k: asdict(m) for k, m in self.models.items()}, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> UpliftModels:
        index = json.loads((Path(folder) / "uplift.json").read_text())
        return cls({k: OfferEffectModel(**v) for k, v in index.items()})


def offer_effects(scorer, uplift: UpliftModels | None, x: np.ndarray, p: np.ndarray,
                  catalogue: Catalogue, contributions: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """Every catalogue offer's effect for a block of customers (learnt where trained, else prior)."""
    uplift = uplift or UpliftModels.priors_only(catalogue, "the model carries no uplift models")
    z = None
    if uplift.needs_contributions:
        if contributions is None:
            contributions = scorer.contributions(x)
        z = reason_scores(contributions, [scorer.spec(f).family for f in scorer.features])
    return uplift.effects(p, z, catalogue)

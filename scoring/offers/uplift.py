"""Offer effects at scoring time: a learnt model per offer, or the catalogue's prior.

The learnt model is a logistic model with the churn model's calibrated log-odds as offset, a
linear correction of that risk on the standardised features ``s(x)`` (the churn label and the
campaign outcome differ, see ``UpliftSettings.outcome``), and the offer's effect, which varies
with the same features:

    logit P(gone | not sent) = logit p(x) + c + s(x) . main
    logit P(gone | sent)     = logit p(x) + c + s(x) . main + a + s(x) . inter

so the effect of sending is the difference of the two (negative helps; never a cut larger than the
churn probability itself, since the outcome and the churn label differ). It is fitted with ridge
penalties from randomised campaigns (``training.uplift``). The effect is then shrunk by
``scale``: the churn cut observed in held-out campaigns, minus a margin for its uncertainty,
divided by the cut the model predicted there (0..1), so an offer that did not work out of sample
is not trusted to work now.
An offer without enough history uses its prior: ``-prior_effect x p``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numba
import numpy as np

from features.numeric import logit, sigmoid
from scoring.offers.catalogue import Catalogue

LEARNT, PRIOR = "learnt", "prior"
CLIP = 5.0  # standardised features are clipped to +/- this many standard deviations


LOGIT_EPS = 1e-6  # risks are clipped to [1e-6, 1 - 1e-6] before they become an offset


def standardise(x: np.ndarray, center: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(x - center) / spread, missing values at the center, clipped to +/- CLIP."""
    s = np.subtract(np.asarray(x, dtype=float), center)
    s /= spread
    s[np.isnan(s)] = 0.0
    return np.clip(s, -CLIP, CLIP, out=s)  # +/- inf become +/- CLIP


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _standardised_products(x, center, spread, weights):  # pragma: no cover - compiled
    """``standardise(x, center, spread) @ weights`` in one pass over ``x`` (a column at a time,
    contiguous when ``x`` is column-major as in the batch job), without the standardised
    matrix: at scoring time that matrix and its passes were most of the offers' cost. Each
    column of the result is summed over the features in their order, whatever the other
    columns, so an offer's products do not depend on which offers share the call."""
    n, d = x.shape
    m = weights.shape[1]
    out = np.zeros((m, n))  # transposed: each product's rows contiguous
    column = np.empty(n)
    for j in range(d):
        c, sp = center[j], spread[j]
        for i in range(n):
            s = (x[i, j] - c) / sp
            s = 0.0 if s != s else s  # missing: at the center
            column[i] = min(max(s, -CLIP), CLIP)
        for q in range(m):
            w = weights[j, q]
            for i in range(n):
                out[q, i] += column[i] * w
    return out.T


def standardised_products(x: np.ndarray, center: np.ndarray, spread: np.ndarray,
                          weights: np.ndarray) -> np.ndarray:
    """``standardise(x, center, spread) @ weights`` (rows x weight columns), compiled; equal to
    it up to the order of the sums (the tests hold it to 1e-12)."""
    x = np.asarray(x, dtype=np.float64)
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        x = np.ascontiguousarray(x)
    return _standardised_products(x, np.asarray(center, dtype=np.float64),
                                  np.asarray(spread, dtype=np.float64),
                                  np.ascontiguousarray(weights, dtype=np.float64))


@dataclass
class OfferEffectModel:
    offer_id: str
    source: str  # LEARNT | PRIOR
    note: str = ""
    c: float = 0.0  # shift of the churn model's log-odds to the campaign outcome
    a: float = 0.0  # the offer's effect (log-odds) at the average customer
    main: list[float] = field(default_factory=list)  # per feature: risk correction
    inter: list[float] = field(default_factory=list)  # per feature: how the effect varies
    center: list[float] = field(default_factory=list)  # per feature: standardisation
    spread: list[float] = field(default_factory=list)
    scale: float = 1.0  # shrinkage from held-out campaigns (observed / predicted cut, 0..1)
    metrics: dict = field(default_factory=dict)

    def effect(self, p_churn: np.ndarray, x: np.ndarray | None, prior_effect: float,
               standardised: np.ndarray | None = None) -> np.ndarray:
        """Change in churn probability per customer if the offer is sent (negative helps).
        ``standardised``: ``x`` already standardised with this model's center and spread."""
        p = np.asarray(p_churn, dtype=float)
        if self.source != LEARNT:
            return -prior_effect * p
        if self.scale == 0.0:
            return np.zeros(len(p))
        if x is None or np.shape(x)[1] != len(self.center):
            raise ValueError(f"offer {self.offer_id}: the learnt effect needs the {len(self.center)} "
                             f"model features, got {None if x is None else np.shape(x)[1]}")
        center, spread, main, inter = self._arrays
        if standardised is None:
            risk, varies = standardised_products(x, center, spread,
                                                 np.column_stack([main, inter])).T
        else:
            risk, varies = standardised @ main, standardised @ inter
        return self._effect(p, risk, varies)

    def _effect(self, p: np.ndarray, risk: np.ndarray, varies: np.ndarray,
                offset: np.ndarray | None = None) -> np.ndarray:
        """The effect from ``s(x) . main`` (``risk``) and ``s(x) . inter`` (``varies``);
        ``offset``: ``logit(p, LOGIT_EPS)`` when the caller has it already (the same for every
        offer)."""
        base = (logit(p, LOGIT_EPS) if offset is None else offset) + self.c + risk
        effect = self.scale * (sigmoid(base + self.a + varies) - sigmoid(base))
        return np.maximum(effect, -p)  # no offer cuts churn risk below zero

    @property
    def _uses_features(self) -> bool:
        return self.source == LEARNT and self.scale != 0.0

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, ...]:  # converted once, not on every request
        return tuple(np.asarray(v, dtype=float) for v in (self.center, self.spread, self.main,
                                                          self.inter))

    @classmethod
    def from_dict(cls, data: dict) -> OfferEffectModel:
        if "b" in data or "reason" in data:  # the reason-matched model of earlier versions
            return cls(data["offer_id"], PRIOR, "prior: the learnt effect was saved by an earlier "
                       "version (reason-matched model); retrain to use campaign history")
        return cls(**data)


@dataclass
class UpliftModels:
    models: dict[str, OfferEffectModel]
    # per catalogue (its offer ids) and feature count: the models and their groups, worked out
    # once, not on every request (about a fifth of the effects' cost for one customer); the
    # models are complete when they are put here (training sets their scale before)
    _plans: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _plan(self, offer_ids: tuple[str, ...], width: int | None) -> tuple[list, list]:
        """The model of each offer, and the groups of learnt models that standardise alike:
        (center, spread, members, their weights side by side)."""
        plan = self._plans.get((offer_ids, width))
        if plan is not None:
            return plan
        models = [self.models.get(o) or OfferEffectModel(o, PRIOR, "not in the trained models")
                  for o in offer_ids]
        groups: list[tuple[np.ndarray, np.ndarray, list[int]]] = []  # center, spread, models
        if width is not None:
            for k, model in enumerate(models):
                if not model._uses_features or width != len(model.center):
                    continue
                center, spread = model._arrays[:2]
                group = next((g for g in groups if np.array_equal(g[0], center)
                              and np.array_equal(g[1], spread)), None)
                if group is None:
                    groups.append((center, spread, [k]))
                else:
                    group[2].append(k)
        plan = models, [(center, spread, members, np.column_stack(
            [w for k in members for w in models[k]._arrays[2:]]))
            for center, spread, members in groups]
        self._plans[(offer_ids, width)] = plan
        return plan

    def effects(self, p_churn: np.ndarray, x: np.ndarray | None,
                catalogue: Catalogue) -> dict[str, np.ndarray]:
        """Every catalogue offer's effect. The learnt models that standardise alike (usually all
        of them) share one compiled pass over ``x`` for all their products."""
        models, groups = self._plan(tuple(o.id for o in catalogue.offers),
                                    None if x is None else np.shape(x)[1])
        products: dict[int, np.ndarray] = {}
        for center, spread, members, weights in groups:
            together = standardised_products(x, center, spread, weights)
            for q, k in enumerate(members):
                products[k] = together[:, 2 * q:2 * q + 2]
        out = {}
        p = np.asarray(p_churn, dtype=float)
        offset = logit(p, LOGIT_EPS) if products else None  # once, not once per offer
        for k, (offer, model) in enumerate(zip(catalogue.offers, models, strict=True)):
            if k in products:
                out[offer.id] = model._effect(p, products[k][:, 0], products[k][:, 1], offset)
            else:
                out[offer.id] = model.effect(p_churn, x, offer.prior_effect)
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
        return cls({k: OfferEffectModel.from_dict(v) for k, v in index.items()})


def effect_models(uplift: UpliftModels | None, catalogue: Catalogue) -> UpliftModels:
    """A model's offer-effect models, or the catalogue's priors when it carries none: worked out
    once per model where it is served (``ScoringCore``), not on every request."""
    return uplift or UpliftModels.priors_only(catalogue, "the model carries no uplift models")


def offer_effects(uplift: UpliftModels | None, x: np.ndarray, p: np.ndarray,
                  catalogue: Catalogue) -> dict[str, np.ndarray]:
    """Every catalogue offer's effect for a block of customers (learnt where trained, else prior)."""
    return effect_models(uplift, catalogue).effects(p, x, catalogue)

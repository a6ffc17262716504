"""The scoring core shared by the online service and the batch job.

Given feature vectors it returns, per customer: the calibrated churn probability, the risk band,
the top reasons and the offer decision. It works on numpy arrays: no pandas and no MLflow pyfunc
on the request path; contributions are computed once per block and only when reasons or learnt
offer effects need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.spec import CATEGORY
from scoring.bands import RiskBands
from scoring.model_store import LoadedModel
from scoring.offers.catalogue import Catalogue
from scoring.offers.policy import Customers, Options, best_offers, explain, options
from scoring.offers.uplift import effect_models
from scoring.offers.value import ValueConfig, customer_value, value_features
from scoring.reasons import top_reasons
from scoring.rows import RowReader
from scoring.scorer import PATH


@dataclass
class ScoringCore:
    model: LoadedModel
    catalogue: Catalogue
    value: ValueConfig = field(default_factory=ValueConfig)
    bands: RiskBands = field(default_factory=RiskBands)

    def __post_init__(self):
        s = self.model.scorer
        pos = {name: j for j, name in enumerate(s.features)}
        orders, aov = value_features(self.value)
        self._value_cols = (pos.get(orders), pos.get(aov))
        self._attr = {name: pos.get(name) for name in ("days_since_last_offer", "segment",
                                                       "plan", "has_contract")}
        self._tables: dict[str, np.ndarray] = {}
        self.rows = RowReader(s)  # one customer's feature dict as a checked vector (online)
        # the offers' effect models (the catalogue's priors when the model has none) and where
        # each effect comes from: once per model, not per request
        self.effect_models = effect_models(self.model.uplift, self.catalogue)
        self._sources = self.model.uplift.sources() if self.model.uplift else {}

    def _attribute(self, x: np.ndarray, name: str, decode: bool = False):
        j = self._attr[name]
        if j is None:
            return None
        column = x[:, j]
        if decode:
            scorer = self.model.scorer
            if scorer.kinds[j] != CATEGORY:
                return np.array([scorer.decode(name, v) for v in column], dtype=object)
            table = self._tables.get(name)
            if table is None:  # the category names, missing last: built once per model
                table = self._tables[name] = np.array([*scorer.categories[name], None],
                                                      dtype=object)
            missing = np.isnan(column)
            return table[np.where(missing, len(table) - 1, column).astype(int)]
        return column

    def customer_values(self, x: np.ndarray) -> np.ndarray:
        j_orders, j_aov = self._value_cols
        if j_orders is None or j_aov is None:
            return np.full(len(x), self.value.min_value)
        return customer_value(x[:, j_orders], x[:, j_aov], self.value)

    def customers(self, x: np.ndarray, p: np.ndarray) -> Customers:
        """The block of customers the offer policy sees: risk, value, last offer, segment, plan,
        contract (the attributes the model has; the others are left out of eligibility)."""
        last_offer = (np.full(len(x), np.nan) if self._attr["days_since_last_offer"] is None
                      else self._attribute(x, "days_since_last_offer"))
        return Customers(p, self.customer_values(x), last_offer,
                         self._attribute(x, "segment", True), self._attribute(x, "plan", True),
                         self._attribute(x, "has_contract"))

    def offer_options(self, x: np.ndarray, p: np.ndarray) -> tuple[Customers, Options]:
        """The block's customers as the policy sees them and every offer's net value for each."""
        c = self.customers(x, p)
        return c, options(c, self.effect_models.effects(p, x, self.catalogue), self.catalogue)

    def score_block(self, x: np.ndarray, top_k: int = 3, with_offers: bool = True,
                    threads: int = 1) -> list[dict[str, Any]]:
        """Scores, bands, reasons and offers for a block of feature vectors (rows of ``x``)."""
        scorer = self.model.scorer
        if top_k > 0 or scorer.contribution_method == PATH:
            # the compiled walk gives the score (and contributions) without a LightGBM call:
            # cheaper for a few rows, and no tail latency from the booster in a thread pool
            p, contrib = scorer.predict_explain(x, threads=threads)
        else:
            p, contrib = scorer.predict(x, threads=threads), None
        decisions = [None] * len(x)
        if with_offers:
            c, opts = self.offer_options(x, p)
            chosen, _ = best_offers(opts)
            decisions = [explain(i, int(chosen[i]), c, opts, self.catalogue, self._sources)
                         for i in range(len(x))]
        out = []
        for i in range(len(x)):
            reasons = ([r.as_dict() for r in top_reasons(scorer, x[i], contrib[i], top_k)]
                       if top_k > 0 else [])
            item = {"churn_probability": float(p[i]), "risk_band": self.bands.band(float(p[i])),
                    "reasons": reasons}
            if with_offers:
                d = decisions[i]
                offer = None if d.offer_id is None else self.catalogue.offers[chosen[i]]
                item["offer"] = None if offer is None else {
                    "offer_id": d.offer_id, "name": offer.name, "channel": offer.channel,
                    "expected_net_value": d.expected_net_value,
                    "churn_reduction": d.churn_reduction, "cost": d.cost,
                    "customer_value": d.customer_value, "effect_source": d.effect_source,
                    "addresses": list(d.addresses), "why": d.why}
                item["offer_explanation"] = d.why
            out.append(item)
        return out

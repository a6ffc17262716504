"""The scoring core (scoring.core): the offer decisions it serves are the policy's own, on the
customers it reads from the feature vectors, with the effect models worked out once per model."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.catalogue import load_catalogue
from scoring.offers.policy import best_offers, explain, options
from scoring.offers.uplift import LEARNT, OfferEffectModel, UpliftModels, offer_effects


def _learnt(x: np.ndarray) -> UpliftModels:
    """A learnt effect for one offer (the others fall back to their priors)."""
    rng = np.random.default_rng(0)
    d = x.shape[1]
    center = np.nan_to_num(np.nanmean(x, axis=0)).tolist()
    spread = np.nan_to_num(np.nanstd(x, axis=0), nan=1.0).clip(1e-3).tolist()
    return UpliftModels({"service_call": OfferEffectModel(
        "service_call", LEARNT, c=0.1, a=-0.9, main=rng.normal(0, 0.1, d).tolist(),
        inter=rng.normal(0, 0.1, d).tolist(), center=center, spread=spread, scale=0.8)})


@pytest.mark.parametrize("with_uplift", [False, True], ids=["priors", "learnt"])
def test_served_offers_are_the_policys_decisions_on_the_models_customers(fitted, training_data,
                                                                        with_uplift):
    scorer, _ = fitted
    catalogue = load_catalogue()
    x = training_data.x[:400]
    uplift = _learnt(x) if with_uplift else None
    core = ScoringCore(LoadedModel(scorer, "", None, None, None, uplift), catalogue)
    models = core.effect_models
    answers = core.score_block(x, top_k=0)
    p = np.array([a["churn_probability"] for a in answers])
    c = core.customers(x, p)
    want = options(c, offer_effects(uplift, x, p, catalogue), catalogue)
    c_got, got = core.offer_options(x, p)
    for name in ("net", "reduction", "costs", "cooling"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    chosen, _ = best_offers(want)
    sources = uplift.sources() if uplift else {}
    for i, answer in enumerate(answers):
        d = explain(i, int(chosen[i]), c, want, catalogue, sources)
        assert answer["offer_explanation"] == d.why, i
        if d.offer_id is None:
            assert answer["offer"] is None, i
        else:
            offer = catalogue.offer(d.offer_id)
            assert answer["offer"] == {
                "offer_id": offer.id, "name": offer.name, "channel": offer.channel,
                "expected_net_value": d.expected_net_value, "churn_reduction": d.churn_reduction,
                "cost": d.cost, "customer_value": d.customer_value,
                "effect_source": d.effect_source, "addresses": list(offer.addresses),
                "why": d.why}, i
    sent = {a["offer"]["offer_id"] for a in answers if a["offer"]}
    assert sent and any(a["offer"] is None for a in answers), "offers sent and not sent"
    if with_uplift:
        assert {a["offer"]["effect_source"] for a in answers if a["offer"]} <= {LEARNT, "prior"}
    # the effect models (the priors when the model has none) are the core's own, kept across
    # requests, their plan worked out once
    assert core.effect_models is models and (uplift is None or models is uplift)
    assert len(models._plans) == 1

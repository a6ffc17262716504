"""The next training reads campaign readouts: a disproven offer is no longer trusted."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from scoring.offers.catalogue import load_catalogue
from scoring.offers.design import CampaignError
from scoring.offers.readout import evidence_table, read_campaign
from scoring.offers.uplift import LEARNT, PRIOR, OfferEffectModel, UpliftModels
from training.policy_evaluation import evaluate_policies
from training.readouts import apply_readouts, latest_verdicts, read_evidence
from training.uplift import CampaignData


def _evidence(tmp_path, cuts: dict[str, tuple[int, int]], when: str, name: str):
    """A readout where each offer's 2,000 treated and 2,000 held-out customers churned this
    many (treated, hold-out) times."""
    rows = []
    for oid, (ct, cc) in cuts.items():
        t = np.r_[np.ones(2000, bool), np.zeros(2000, bool)]
        y = np.r_[np.arange(2000) < ct, np.arange(2000) < cc].astype(float)
        rows.append(pd.DataFrame({"customer_id": range(4000), "offer_id": oid, "treated": t,
                                  "outcome": y}))
    table = evidence_table(read_campaign(pd.concat(rows), load_catalogue()), name,
                           pd.Timestamp(when))
    path = tmp_path / f"{name}.parquet"
    table.to_parquet(path)
    return path


def test_a_disproven_offer_is_scaled_to_nothing_and_a_proven_one_kept(tmp_path):
    early = _evidence(tmp_path, {"discount_10": (400, 400)}, "2025-01-01", "early")
    late = _evidence(tmp_path, {"discount_10": (300, 400), "loyalty_bonus": (400, 400)},
                     "2025-06-01", "late")
    evidence = read_evidence([late, early])
    assert latest_verdicts(evidence) == {"discount_10": "proven", "loyalty_bonus": "disproven"}
    models = UpliftModels({
        "discount_10": OfferEffectModel("discount_10", LEARNT, "learnt", scale=0.6),
        "loyalty_bonus": OfferEffectModel("loyalty_bonus", PRIOR, "prior")})
    apply_readouts(models, evidence)
    assert models.models["discount_10"].scale == 0.6
    assert "readout: proven" in models.models["discount_10"].note
    bonus = models.models["loyalty_bonus"]
    assert bonus.scale == 0.0 and "disproven" in bonus.note
    p = np.array([0.3, 0.5])
    assert (bonus.effect(p, None, prior_effect=0.1) == 0).all(), "the prior is no longer assumed"


def test_a_table_that_is_not_a_readout_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"offer_id": ["a"], "effect": [0.1]}).to_csv(path, index=False)
    with pytest.raises(CampaignError, match="not a readout's evidence table"):
        read_evidence([path])


def test_judging_a_policy_on_campaigns_with_offers_unknown_to_the_catalogue_is_refused():
    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "campaign": pd.Timestamp("2025-01-01"),
                          "offer_id": ["discount_10", "free_phone"], "treated": [True, False],
                          "outcome": [0.0, 1.0]})
    core = types.SimpleNamespace(catalogue=load_catalogue())
    with pytest.raises(CampaignError, match="unknown to the catalogue: \\['free_phone'\\]"):
        evaluate_policies(CampaignData(frame, np.zeros((2, 1))), frame, core)


def test_judging_a_policy_on_a_campaign_without_hold_out_is_refused():
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C3"],
                          "campaign": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-04-01"]),
                          "offer_id": "discount_10", "treated": [True, False, True],
                          "outcome": [0.0, 1.0, 0.0]})
    core = types.SimpleNamespace(catalogue=load_catalogue())
    with pytest.raises(CampaignError, match="campaign 2025-04-01 has no hold-out"):
        evaluate_policies(CampaignData(frame, np.zeros((3, 1))), frame, core)

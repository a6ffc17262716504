"""Uplift on the generated sample: the learnt effects point the way the simulation's do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.io import load_crm
from features.sample import SampleSpec, generate, write_sample
from scoring.offers.catalogue import load_catalogue
from scoring.offers.uplift import LEARNT
from training.config import TrainConfig
from training.dataset import from_feature_set
from training.model import fit_churn_model
from training.uplift import campaign_data, fit_uplift

CUTOFFS = [pd.Timestamp(c) for c in ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01")]


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uplift") / "crm"
    write_sample(generate(SampleSpec(customers=40_000, months=24, seed=21)), folder)
    crm = load_crm(folder)
    labels, features = LabelConfig(), FeatureConfig()
    scorer, _ = fit_churn_model(
        from_feature_set(build_feature_set(crm, CUTOFFS, features, labels), TrainConfig()),
        TrainConfig())
    catalogue = load_catalogue()
    data = campaign_data(crm, scorer, features, labels, catalogue.uplift)
    fit = fit_uplift(data, scorer, catalogue)
    base = build_feature_set(crm, [crm.data_end.normalize() + pd.Timedelta(days=1)], features,
                             labels).frame
    truth = pd.read_parquet(folder / "_truth" / "offer_effects.parquet").pivot(
        index="customer_id", columns="offer_id", values="effect").reindex(base["customer_id"])
    x = scorer.matrix(base)
    return data, fit, x, scorer.predict(x), truth


@pytest.mark.slow
def test_campaign_outcomes_are_known_for_every_row_and_churn_more_in_the_hold_out(learnt):
    data, _, _, _, _ = learnt
    assert data.outcome == "gone" and data.frame["outcome"].isin([0.0, 1.0]).all()
    assert data.frame["campaign"].nunique() >= 4
    hold_out = ~data.frame["treated"].astype(bool)
    assert data.frame.loc[hold_out, "outcome"].mean() > data.frame.loc[~hold_out, "outcome"].mean()


@pytest.mark.slow
def test_uplift_recovers_the_direction_of_the_true_effects(learnt):
    """Persuadable customers (the largest true cuts) get a larger estimated cut than the sure
    things and lost causes (true cut near zero), for the offer that works on this sample."""
    _, fit, x, p, truth = learnt
    model = fit.models.models["discount_10"]
    assert model.source == LEARNT
    estimated = -dataclasses.replace(model, scale=1.0).effect(p, x, 0.0)
    true_cut = -truth["discount_10"].fillna(0.0).to_numpy()
    persuadable = true_cut >= np.quantile(true_cut, 0.8)
    unmoved = np.abs(true_cut) <= np.quantile(np.abs(true_cut), 0.4)
    assert estimated[persuadable].mean() > 1.5 * estimated[unmoved].mean()
    assert pd.Series(estimated).corr(pd.Series(true_cut), method="spearman") > 0.2
    ranked = np.argsort(-estimated, kind="stable")[: len(estimated) // 10]
    assert true_cut[ranked].mean() > 1.5 * true_cut.mean(), "the top tenth is not the best bet"


def test_campaigns_can_be_judged_on_the_churn_label_instead(sample_crm, fitted):
    from scoring.offers.catalogue import UpliftSettings

    scorer, _ = fitted
    labels = LabelConfig()
    by_label = campaign_data(sample_crm, scorer, FeatureConfig(), labels,
                             UpliftSettings(outcome="label"))
    gone = campaign_data(sample_crm, scorer, FeatureConfig(), labels, UpliftSettings())
    assert by_label.outcome == "label" and gone.outcome == "gone"
    assert by_label.frame["outcome"].equals(by_label.frame["label"].astype(float))
    # judging on "gone" waits gone_after_days longer for a campaign's outcome
    assert by_label.frame["campaign"].max() > gone.frame["campaign"].max()
    assert gone.frame["outcome"].mean() < by_label.frame["outcome"].mean()

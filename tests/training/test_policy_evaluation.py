"""The policies judged on the training data's campaigns, logged with the training run."""

from __future__ import annotations

import mlflow
import pytest

from features.config import FeatureConfig, LabelConfig
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.catalogue import load_catalogue
from training.policy_evaluation import evaluate_policies, judge_at_training
from training.uplift import campaign_data, fit_uplift


@pytest.mark.slow
def test_the_training_run_logs_each_policys_estimate(local_tracking, sample_crm, fitted):
    scorer, _ = fitted
    catalogue = load_catalogue()
    data = campaign_data(sample_crm, scorer, FeatureConfig(), LabelConfig(), catalogue.uplift)
    uplift = fit_uplift(data, scorer, catalogue).models
    with mlflow.start_run() as run:
        table = judge_at_training(data, sample_crm.offers, scorer, uplift, catalogue)
    assert set(table["policy"]) == {"current", "risk-only", "no offer"}
    assert set(table["estimator"]) == {"ips", "dr"}
    assert (table["low"] < table["value"]).all() and (table["value"] < table["high"]).all()
    # the sample's campaigns send an offer to 80% of the customers they select
    nothing = table[(table["policy"] == "no offer") & (table["estimator"] == "ips")].iloc[0]
    assert nothing["matched"] == pytest.approx(0.2, abs=0.03)
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert {"ope.current.dr.value", "ope.risk-only.ips.gain_low", "ope.no_offer.dr.high"} \
        <= set(metrics)
    assert judge_at_training(None, sample_crm.offers, scorer, uplift, catalogue) is None
    # a challenger's policy is judged on the same log: the same model as challenger agrees
    core = ScoringCore(LoadedModel(scorer, "", None, None, None, uplift), catalogue)
    both = evaluate_policies(data, sample_crm.offers, core, challenger=core).set_index(
        ["policy", "estimator"])
    for est in ("ips", "dr"):
        assert both.loc[("challenger", est), "value"] == both.loc[("current", est), "value"]


@pytest.mark.slow
def test_a_training_run_on_events_carries_the_policy_estimates(served_workdir, served):
    """The pipeline's uplift step judges the policies: the champion's own run has the estimates."""
    from mlflow import MlflowClient

    client = MlflowClient()
    version = client.get_model_version("churn", served["version"])
    run = client.get_run(version.run_id)
    for key in ("ope.current.dr.value", "ope.current.dr.gain_low", "ope.risk-only.ips.value",
                "ope.no_offer.dr.value"):
        assert key in run.data.metrics, sorted(k for k in run.data.metrics if k.startswith("ope"))

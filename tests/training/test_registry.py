"""Registry and promotion against a real `mlflow server` started on a free loopback port."""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from scoring.model_store import load_scorer
from training.config import LightGBMConfig, TrainConfig
from training.dataset import HOLDOUT
from training.pipeline import train_on_feature_set
from training.registry import PromotionError, promote

pytestmark = pytest.mark.slow


def _config(name: str, **lgbm) -> TrainConfig:
    return TrainConfig(experiment=f"exp-{name}", model_name=name,
                       lightgbm=LightGBMConfig(**lgbm) if lgbm else LightGBMConfig())


def _worse(name: str) -> TrainConfig:
    """A much worse model: one tree with two leaves, and no linear candidate to rescue it (a
    linear model alone is close to the tuned one on this small sample)."""
    return _config(name, max_rounds=1, num_leaves=2).model_copy(update={"linear_candidate": False})


def test_train_register_promote_and_load_the_champion(tracking_server, feature_set, training_data,
                                                      tmp_path):
    name = f"churn_{uuid.uuid4().hex[:8]}"
    client = MlflowClient()

    first = train_on_feature_set(feature_set, "fp", _features(), _config(name))
    assert first.model_version == "1"
    assert client.get_model_version_by_alias(name, "challenger").version == "1"
    run = client.get_run(first.run_id)
    assert run.data.tags["data_fingerprint"] == "fp"
    assert {"roc_auc", "pr_auc", "brier", "log_loss", "calibration_error", "lift_top10",
            "capture_top10", "best_profit", "baseline.logistic_rfm.roc_auc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/profit.png", "plots/gains.png",
            "plots/precision_recall.png", "plots/feature_importance.png"} <= artifacts

    decision = promote(name)
    assert decision.promoted and decision.champion_version is None
    assert client.get_model_version_by_alias(name, "champion").version == "1"

    # a much worse challenger (one tree, two leaves) is refused
    worse = train_on_feature_set(feature_set, "fp", _features(),
                                 _worse(name))
    assert worse.model_version == "2"
    refused = promote(name)
    assert not refused.promoted, refused
    assert refused.challenger_value < refused.champion_value
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "2").tags["promotion.decision"] == "refused"

    # a challenger as good as the champion is accepted (no worse within the tolerance)
    same = train_on_feature_set(feature_set, "fp", _features(), _config(name))
    accepted = promote(name)
    assert accepted.promoted, accepted
    assert client.get_model_version_by_alias(name, "champion").version == same.model_version

    # the champion loads through the pyfunc flavour and returns probabilities
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    loaded = load_scorer(f"models:/{name}@champion")
    rows = training_data.frame[training_data.rows(HOLDOUT)].head(100)
    from training.tracking import model_input_frame

    out = model.predict(model_input_frame(loaded.scorer, rows))
    assert list(out.columns) == ["churn_probability"]
    assert out["churn_probability"].between(0, 1).all()
    assert np.allclose(out["churn_probability"], loaded.scorer.predict_frame(rows))
    assert loaded.version == same.model_version


def test_force_promotes_a_worse_model_and_says_so(tracking_server, feature_set):
    name = f"churn_{uuid.uuid4().hex[:8]}"
    train_on_feature_set(feature_set, "fp", _features(), _config(name))
    promote(name)
    train_on_feature_set(feature_set, "fp", _features(), _worse(name))
    forced = promote(name, force=True)
    assert forced.promoted and forced.forced
    client = MlflowClient()
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "2").tags["promotion.forced"] == "true"


def test_promotion_without_a_challenger_is_an_error(tracking_server):
    with pytest.raises(PromotionError, match="churn train"):
        promote(f"nothing_{uuid.uuid4().hex[:8]}")


def _features():
    from features.config import FeatureConfig

    return FeatureConfig()

"""Typed training settings: model, calibration, evaluation economics, MLflow names, promotion gate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LightGBMConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    max_rounds: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    balance_classes: bool = Field(True, description="weight positives by negatives/positives")
    threads: int = Field(0, ge=0, description="LightGBM's threads; 0: OpenMP's default "
                         "(OMP_NUM_THREADS when set, else one per core)")


class EconomicsConfig(BaseModel):
    """What acting on the ranked list costs and saves, for the profit curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offer_cost: float = Field(10.0, ge=0, description="cost of one retention contact")
    offer_success_rate: float = Field(0.3, ge=0, le=1,
                                      description="share of contacted churners who then stay")
    customer_value: float = Field(200.0, ge=0, description="margin kept when a churner stays")


class TrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 42
    lightgbm: LightGBMConfig = LightGBMConfig()
    economics: EconomicsConfig = EconomicsConfig()
    calibration: Literal["auto", "isotonic", "sigmoid"] = Field(
        "auto", description="auto = isotonic with 1,000+ calibration rows, else sigmoid")
    holdout_cutoffs: int = Field(1, ge=1, description="latest complete cutoffs kept out of time")
    cv_folds: int = Field(3, ge=2, le=10, description=(
        "cross-validation folds on the training rows (event path with several training cutoffs: "
        "the latest ones, each predicted from the cutoffs before it)"))
    linear_candidate: bool = Field(True, description=(
        "also cross-validate a regularised logistic regression and blend it in when it helps"))
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="table path: hold-out share")
    segment_columns: tuple[str, ...] = ("segment", "plan", "contract", "has_contract")
    experiment: str = "churn"
    model_name: str = "churn"
    contribution_method: Literal["path", "shap"] = Field("path", description=(
        "how reasons attribute a score to features: 'path' (decision-path "
        "attribution, the cost of a prediction) or 'shap' (exact TreeSHAP, ~100x slower)"))
    primary_metric: Literal["roc_auc", "pr_auc", "log_loss", "brier"] = "roc_auc"
    promotion_tolerance: float = Field(0.005, ge=0, description=(
        "a challenger may be this much worse on the primary metric and still be promoted"))

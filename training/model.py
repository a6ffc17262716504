"""Fitting the churn model: LightGBM with early stopping, optional Optuna search, calibration."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from features.numeric import logit
from features.spec import CATEGORY
from scoring.scorer import Calibrator, ChurnScorer
from training.config import LightGBMConfig, TrainConfig
from training.dataset import CALIB, FIT, VALID, TrainingData

log = logging.getLogger(__name__)


@dataclass
class FitInfo:
    params: dict
    best_rounds: int
    valid_auc: float
    tuning_trials: int


def _params(cfg: LightGBMConfig, seed: int, y_fit: np.ndarray, **override) -> dict:
    params = {
        "objective": "binary", "metric": "auc", "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves, "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction, "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1, "lambda_l2": cfg.lambda_l2, "seed": seed, "deterministic": True,
        "force_row_wise": True, "num_threads": cfg.threads, "verbosity": -1,
        "cat_smooth": 10, "max_cat_to_onehot": 8,
    }
    if cfg.balance_classes:
        pos = max(1.0, y_fit.sum())
        params["scale_pos_weight"] = float((len(y_fit) - pos) / pos)
    params.update(override)
    return params


def _train(data: TrainingData, params: dict, cfg: LightGBMConfig) -> lgb.Booster:
    cats = [j for j, k in enumerate(data.kinds) if k == CATEGORY]
    x_fit, y_fit = data.xy(FIT)
    x_val, y_val = data.xy(VALID)
    train = lgb.Dataset(x_fit, y_fit, feature_name=data.features, categorical_feature=cats,
                        free_raw_data=False)
    valid = lgb.Dataset(x_val, y_val, reference=train)
    return lgb.train(params, train, num_boost_round=cfg.max_rounds, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])


def _tune(data: TrainingData, config: TrainConfig, trials: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config.lightgbm
    y_fit = data.xy(FIT)[1]
    x_val, y_val = data.xy(VALID)

    def objective(trial: optuna.Trial) -> float:
        override = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 300, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30, log=True),
        }
        booster = _train(data, _params(cfg, config.seed, y_fit, **override), cfg)
        return roc_auc_score(y_val, booster.predict(x_val, num_iteration=booster.best_iteration))

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.optimize(objective, n_trials=trials)
    log.info("tuning: best validation AUC %.4f after %d trials", study.best_value, trials)
    return study.best_params


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: str) -> Calibrator:
    if method == "auto":
        method = "isotonic" if len(y) >= 1000 else "sigmoid"
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return Calibrator("isotonic", tuple(map(float, iso.X_thresholds_)),
                          tuple(map(float, iso.y_thresholds_)))
    lr = LogisticRegression(C=1e6).fit(logit(raw).reshape(-1, 1), y)
    return Calibrator("sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))


def fit_churn_model(data: TrainingData, config: TrainConfig, tune_trials: int = 0,
                    meta: dict | None = None) -> tuple[ChurnScorer, FitInfo]:
    """LightGBM on FIT, early stopping on VALID, calibration on CALIB; one scorer object."""
    cfg = config.lightgbm
    y_fit = data.xy(FIT)[1]
    override = _tune(data, config, tune_trials) if tune_trials > 0 else {}
    params = _params(cfg, config.seed, y_fit, **override)
    booster = _train(data, params, cfg)
    best = booster.best_iteration or booster.current_iteration()
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    x_val, y_val = data.xy(VALID)
    valid_auc = float(roc_auc_score(y_val, booster.predict(x_val)))
    x_cal, y_cal = data.xy(CALIB)
    calibrator = fit_calibrator(booster.predict(x_cal), y_cal, config.calibration)
    scorer = ChurnScorer(data.features, data.kinds, data.categories, booster, calibrator,
                         data.specs, dict(meta or {}, best_rounds=best,
                                          contribution_method=config.contribution_method))
    log.info("LightGBM: %d rounds, validation AUC %.4f, %s calibration", best, valid_auc,
             calibrator.kind)
    return scorer, FitInfo(params, best, valid_auc, tune_trials)

"""Fitting the churn model: settings and family by cross-validation (``training.selection``),
optional Optuna search, a refit on every training row, calibration on out-of-fold predictions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from features.numeric import logit, sigmoid
from features.progress import bar
from features.spec import CATEGORY
from scoring.scorer import Calibrator, ChurnScorer
from training.config import LightGBMConfig, TrainConfig
from training.dataset import HOLDOUT, TrainingData
from training.selection import fit_linear, select

log = logging.getLogger(__name__)


@dataclass
class FitInfo:
    params: dict
    best_rounds: int
    cv_auc: float  # out-of-fold ROC AUC of the chosen model on the training rows
    tuning_trials: int
    selection: dict = field(default_factory=dict)  # candidates' CV AUCs, the blend, the folds


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


def _tune(data: TrainingData, config: TrainConfig, trials: int) -> dict:
    """Optuna over LightGBM's main settings, each trial judged by cross-validated AUC."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config.lightgbm
    y_train = data.y[data.part != HOLDOUT]

    def objective(trial: optuna.Trial) -> float:
        override = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 300, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30, log=True),
        }
        params = _params(cfg, config.seed, y_train, **override)
        return select(data, params, cfg.max_rounds, cfg.early_stopping_rounds, config.cv_folds,
                      config.seed, linear=False).tree_auc

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=config.seed))
    with bar(total=trials, desc="tuning", unit="trial") as progress:
        def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            progress.set_postfix_str(f"best AUC {study.best_value:.4f}", refresh=False)
            progress.update()

        study.optimize(objective, n_trials=trials, callbacks=[advance])
    log.info("tuning: best cross-validated AUC %.4f after %d trials", study.best_value, trials)
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


FIT_STEPS = ("cross-validation", "refit on all training rows", "calibration")


def _step(progress, done: int) -> None:
    """Mark ``done`` steps of the fit as finished and name the next one."""
    progress.update(done - progress.n)
    if done < len(FIT_STEPS):
        progress.set_postfix_str(FIT_STEPS[done])


def fit_churn_model(data: TrainingData, config: TrainConfig, tune_trials: int = 0,
                    meta: dict | None = None) -> tuple[ChurnScorer, FitInfo]:
    """Settings and family chosen by cross-validation on the training rows (LightGBM, a linear
    model or a blend), refitted on all of them, calibrated on the out-of-fold predictions."""
    cfg = config.lightgbm
    train_rows = np.flatnonzero(data.part != HOLDOUT)
    override = _tune(data, config, tune_trials) if tune_trials > 0 else {}
    params = _params(cfg, config.seed, data.y[train_rows], **override)
    with bar(total=len(FIT_STEPS), desc="training", unit="step") as progress:
        progress.set_postfix_str(FIT_STEPS[0])
        sel = select(data, params, cfg.max_rounds, cfg.early_stopping_rounds, config.cv_folds,
                     config.seed, linear=config.linear_candidate)
        _step(progress, 1)
        cats = [j for j, k in enumerate(data.kinds) if k == CATEGORY]
        train = lgb.Dataset(data.x[train_rows], data.y[train_rows], feature_name=data.features,
                            categorical_feature=cats)
        params = sel.tree_params
        booster = lgb.train({k: v for k, v in params.items() if k != "metric"}, train,
                            num_boost_round=sel.rounds)
        linear = (fit_linear(data, train_rows, sel.linear_c, sel.linear_transform)
                  if sel.tree_weight < 1 else None)
        _step(progress, 2)
        calibrator = fit_calibrator(sigmoid(sel.oof_margin), data.y[sel.oof_rows],
                                    config.calibration)
        _step(progress, 3)
    scorer = ChurnScorer(data.features, data.kinds, data.categories, booster, calibrator,
                         data.specs, dict(meta or {}, best_rounds=sel.rounds,
                                          contribution_method=config.contribution_method,
                                          **sel.summary()),
                         linear=linear, tree_weight=sel.tree_weight)
    log.info("%s: %d rounds, cross-validated AUC %.4f, %s calibration", sel.winner, sel.rounds,
             sel.blend_auc, calibrator.kind)
    return scorer, FitInfo(params, sel.rounds, sel.blend_auc, tune_trials, sel.summary())

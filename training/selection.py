"""Model selection by cross-validation on the training rows (the hold-out is never touched).

Folds: on the event path, out of time (train on the cutoffs before one, validate on it) when there
are two or more training cutoffs, else by customer; on the table path, stratified. Candidates:
LightGBM (early stopping inside each fold gives the number of boosting rounds) and a regularised
logistic regression (``scoring.linear``) with its penalty chosen on the same folds. Their
out-of-fold log-odds are blended with the weight that ranks best; the calibrator is fitted on the
blended out-of-fold predictions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from features.spec import CATEGORY
from scoring.linear import LinearDesign, LinearPart
from training.dataset import HOLDOUT, TrainingData, TrainingInputError

log = logging.getLogger(__name__)

BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of the trees in the blend
LINEAR_C = (0.05, 1.0)  # inverse penalty strengths tried for the linear model
LINEAR_TRANSFORMS = ("squash", "identity")  # how its numbers enter: log-squashed or as they are
MIN_GAIN = 0.001  # a blend must beat the trees alone by this much AUC to be chosen
LINEAR_MAX_ROWS = 50_000
SMALL_DATA_ROWS = 20_000  # below this many training rows LightGBM's defaults are a candidate too
LIGHTGBM_DEFAULTS = {"learning_rate": 0.1, "min_data_in_leaf": 20, "feature_fraction": 1.0,
                     "bagging_fraction": 1.0, "bagging_freq": 0, "lambda_l2": 0.0,
                     "scale_pos_weight": 1.0}  # the linear model is fitted on a fixed sample of larger sets


@dataclass
class Fold:
    train: np.ndarray  # row indices into the TrainingData
    valid: np.ndarray


@dataclass
class Selection:
    folds: int
    fold_kind: str  # "time" | "customer" | "stratified"
    rounds: int  # boosting rounds for the refit
    tree_auc: float  # out-of-fold ROC AUC of each candidate and of the chosen blend
    linear_auc: float
    blend_auc: float
    tree_weight: float
    tree_settings: str  # "configured" | "defaults" (LightGBM's own, tried on small data)
    tree_params: dict
    linear_c: float
    linear_transform: str
    oof_rows: np.ndarray = field(repr=False)  # rows with an out-of-fold prediction
    oof_margin: np.ndarray = field(repr=False)  # the chosen blend's log-odds on them

    @property
    def winner(self) -> str:
        return {1.0: "lightgbm", 0.0: "linear"}.get(self.tree_weight, "blend")

    def summary(self) -> dict:
        return {"cv_folds": self.folds, "lightgbm_settings": self.tree_settings,
                "cv_fold_kind": self.fold_kind, "cv_rounds": self.rounds,
                "cv_auc_lightgbm": self.tree_auc, "cv_auc_linear": self.linear_auc,
                "cv_auc_chosen": self.blend_auc, "tree_weight": self.tree_weight,
                "linear_c": self.linear_c, "linear_transform": self.linear_transform,
                "model_family": self.winner}


def make_folds(data: TrainingData, k: int, seed: int) -> tuple[list[Fold], str]:
    """Folds over the training rows (never the hold-out)."""
    rows = np.flatnonzero(data.part != HOLDOUT)
    rng = np.random.default_rng(seed)
    if data.source == "events" and "cutoff" in data.frame.columns:
        cutoffs = data.frame["cutoff"].to_numpy()[rows]
        distinct = np.unique(cutoffs)
        if len(distinct) >= 2:
            folds = [Fold(rows[cutoffs < c], rows[cutoffs == c]) for c in distinct[1:]]
            return folds[-k:], "time"
        ids = data.frame[data.id_column].astype(str).to_numpy()[rows]
        customers = np.unique(ids)
        group = dict(zip(rng.permutation(customers), np.arange(len(customers)) % k, strict=True))
        which = np.array([group[i] for i in ids])
        return [Fold(rows[which != f], rows[which == f]) for f in range(k)], "customer"
    which = np.empty(len(rows), dtype=int)
    for cls in (0.0, 1.0):  # stratified: each fold holds the same share of churners
        idx = np.flatnonzero(data.y[rows] == cls)
        which[rng.permutation(idx)] = np.arange(len(idx)) % k
    return [Fold(rows[which != f], rows[which == f]) for f in range(k)], "stratified"


def select(data: TrainingData, params: dict, max_rounds: int, early_stopping: int, k: int,
           seed: int, linear: bool = True) -> Selection:
    """Cross-validate LightGBM (the configured settings and, on small data, LightGBM's defaults)
    and the linear model on the training rows; choose the settings and the blend."""
    folds, kind = make_folds(data, k, seed)
    folds = [f for f in folds if len(np.unique(data.y[f.valid])) == 2 and
             len(np.unique(data.y[f.train])) == 2]
    if not folds:
        raise TrainingInputError("no cross-validation fold holds both classes: more data is needed")
    oof_rows = np.concatenate([f.valid for f in folds])
    y = data.y[oof_rows]
    candidates = {"configured": params}
    if (data.part != HOLDOUT).sum() < SMALL_DATA_ROWS:
        candidates["defaults"] = {**params, **LIGHTGBM_DEFAULTS}
    trees = {name: _tree_oof(data, folds, p, max_rounds, early_stopping)
             for name, p in candidates.items()}
    settings = max(trees, key=lambda name: roc_auc_score(y, trees[name][0]))
    (tree_oof, rounds), params = trees[settings], candidates[settings]
    best_c, transform, linear_oof = (_linear_oof(data, folds, y) if linear
                                     else (LINEAR_C[0], LINEAR_TRANSFORMS[0], None))
    tree_auc = float(roc_auc_score(y, tree_oof))
    scores = {1.0: tree_auc}
    if linear_oof is not None:
        for w in BLEND_WEIGHTS[:-1]:
            scores[w] = float(roc_auc_score(y, w * tree_oof + (1 - w) * linear_oof))
    best_w = max(scores, key=scores.get)
    if scores[best_w] < tree_auc + MIN_GAIN:
        best_w = 1.0
    margin = tree_oof if best_w == 1.0 else best_w * tree_oof + (1 - best_w) * linear_oof
    sel = Selection(len(folds), kind, rounds, tree_auc,
                    scores.get(0.0, float("nan")), scores[best_w], best_w, settings, params,
                    best_c, transform,
                    oof_rows, margin)
    log.info("cross-validation (%d %s folds): LightGBM %.4f, linear %.4f, chosen %s %.4f",
             sel.folds, kind, tree_auc, sel.linear_auc, sel.winner, sel.blend_auc)
    return sel


def _dataset(data: TrainingData, rows: np.ndarray, reference=None) -> lgb.Dataset:
    cats = [j for j, kind in enumerate(data.kinds) if kind == CATEGORY]
    return lgb.Dataset(data.x[rows], data.y[rows], feature_name=data.features,
                       categorical_feature=cats, reference=reference, free_raw_data=False)


def _tree_oof(data: TrainingData, folds: list[Fold], params: dict, max_rounds: int,
              early_stopping: int) -> tuple[np.ndarray, int]:
    """Out-of-fold LightGBM log-odds, and the rounds for a refit on all training rows."""
    parts, best = [], []
    for fold in folds:
        train = _dataset(data, fold.train)
        valid = _dataset(data, fold.valid, reference=train)
        booster = lgb.train(params, train, num_boost_round=max_rounds, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(early_stopping, verbose=False)])
        n = booster.best_iteration or booster.current_iteration()
        best.append(n)
        parts.append(booster.predict(data.x[fold.valid], num_iteration=n, raw_score=True))
    # the refit sees more rows than any fold: a tenth more rounds than the folds' average
    rounds = max(1, int(round(np.mean(best) * 1.1)))
    return np.concatenate(parts), rounds


def _linear_oof(data: TrainingData, folds: list[Fold], y: np.ndarray
                ) -> tuple[float, str, np.ndarray]:
    """The penalty and transform with the best out-of-fold AUC, and their out-of-fold log-odds."""
    best = (None, None, -np.inf, None)
    for transform in LINEAR_TRANSFORMS:
        for c in LINEAR_C:
            oof = np.concatenate([fit_linear(data, fold.train, c, transform)
                                  .margin(data.x[fold.valid]) for fold in folds])
            auc = roc_auc_score(y, oof)
            if auc > best[2]:
                best = (c, transform, auc, oof)
    return best[0], best[1], best[3]


def fit_linear(data: TrainingData, rows: np.ndarray, c: float,
               transform: str = "squash") -> LinearPart:
    """A regularised logistic regression on ``rows``, as a LinearPart."""
    n_categories = {j: len(data.categories[name]) for j, (name, kind) in
                    enumerate(zip(data.features, data.kinds, strict=True)) if kind == CATEGORY}
    if len(rows) > LINEAR_MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, LINEAR_MAX_ROWS, replace=False))
    design = LinearDesign(data.x[rows], data.kinds, n_categories, transform)
    with threadpool_limits(1):  # small dense problems: BLAS threads only contend
        model = LogisticRegression(C=c, max_iter=300).fit(design.matrix(data.x[rows]),
                                                          data.y[rows])
    return design.part(model.coef_[0], float(model.intercept_[0]))

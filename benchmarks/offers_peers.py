"""The uplift models a data scientist would reach for today, as peers of the project's policy.

Each peer is fitted per offer on that offer's past-campaign rows (treated = offer sent, control =
the randomised hold-out; outcome = the campaign outcome the project learns from, ``gone`` by
default; features = the churn model's feature matrix) and predicts each base customer's change in
the outcome's probability if the offer were sent (negative helps), which goes into the same
budgeted allocation as the project's effects. The treatment share of the past campaigns is known
(randomised), so the learners that need a propensity get it instead of estimating it.

causalml is imported here only (it is in the ``bench`` extra, not a runtime dependency).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np

LGBM = dict(n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=50,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, verbose=-1, n_jobs=1)
FOREST = dict(n_estimators=20, max_depth=5, min_samples_leaf=200, min_samples_treatment=50,
              n_reg=100, evaluationFunction="KL", max_features=20)
FOREST_ROWS = 12_000  # per offer: the uplift forest is fitted on at most this many rows


def _clf(seed: int):
    import lightgbm as lgb
    return lgb.LGBMClassifier(random_state=seed, **LGBM)


def _reg(seed: int):
    import lightgbm as lgb
    return lgb.LGBMRegressor(random_state=seed, **LGBM)


def _causalml_meta(kind: str, seed: int):
    from causalml.inference.meta import (
        BaseDRClassifier,
        BaseRClassifier,
        BaseSClassifier,
        BaseTClassifier,
        BaseXClassifier,
    )
    if kind == "S":
        return BaseSClassifier(learner=_clf(seed))
    if kind == "T":
        return BaseTClassifier(learner=_clf(seed))
    if kind == "X":
        return BaseXClassifier(outcome_learner=_clf(seed), effect_learner=_reg(seed))
    if kind == "R":
        return BaseRClassifier(outcome_learner=_clf(seed), effect_learner=_reg(seed),
                               random_state=seed)
    if kind == "DR":
        return BaseDRClassifier(learner=_clf(seed), treatment_effect_learner=_reg(seed))
    raise KeyError(kind)


def _fit_predict_meta(kind: str, x, t, y, share: float, base, seed: int) -> np.ndarray:
    model = _causalml_meta(kind, seed)
    p = np.full(len(y), share)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in ("S", "T"):
            model.fit(x, t, y)
        elif kind == "DR":
            model.fit(x, t, y, p=p, seed=seed)
        elif kind == "R":
            model.fit(x, t, y, p=p, verbose=False)
        else:
            model.fit(x, t, y, p=p)
        out = (model.predict(base) if kind == "R"
               else model.predict(base, verbose=False) if kind == "DR"
               else model.predict(base, p=np.full(len(base), share)) if kind == "X"
               else model.predict(base))
    return np.asarray(out, dtype=float).reshape(len(base), -1)[:, 0]


def _fit_predict_forest(x, t, y, base, seed: int) -> np.ndarray:
    from causalml.inference.tree import UpliftRandomForestClassifier

    if len(y) > FOREST_ROWS:
        keep = np.random.default_rng(seed).choice(len(y), FOREST_ROWS, replace=False)
        x, t, y = x[keep], t[keep], y[keep]
    model = UpliftRandomForestClassifier(control_name="control", random_state=seed, n_jobs=1,
                                         **FOREST)
    model.fit(X=_finite(x), treatment=np.where(t == 1, "treated", "control"), y=y.astype(int))
    return np.asarray(model.predict(_finite(base)), dtype=float)[:, 0]


def _finite(x: np.ndarray) -> np.ndarray:
    """The uplift forest's splitter wants finite numbers: missing values as a very low one."""
    return np.nan_to_num(np.asarray(x, dtype=float), nan=-1e12, posinf=1e12, neginf=-1e12)


def _fit_predict_two_model(x, t, y, base, seed: int) -> np.ndarray:
    """Two LightGBM classifiers, one per arm, without causalml: P(gone | sent) - P(gone | not)."""
    treated, control = _clf(seed).fit(x[t == 1], y[t == 1]), _clf(seed).fit(x[t == 0], y[t == 0])
    return treated.predict_proba(base)[:, 1] - control.predict_proba(base)[:, 1]


PEERS: dict[str, Callable] = {
    "causalml S-learner (LightGBM)": lambda *a: _fit_predict_meta("S", *a),
    "causalml T-learner (LightGBM)": lambda *a: _fit_predict_meta("T", *a),
    "causalml X-learner (LightGBM)": lambda *a: _fit_predict_meta("X", *a),
    "causalml R-learner (LightGBM)": lambda *a: _fit_predict_meta("R", *a),
    "causalml DR-learner (LightGBM)": lambda *a: _fit_predict_meta("DR", *a),
    f"causalml uplift forest (KL, {FOREST['n_estimators']} trees, <= {FOREST_ROWS:,} rows/offer)":
        lambda x, t, y, share, base, seed: _fit_predict_forest(x, t, y, base, seed),
    "two-model (two LightGBM classifiers)":
        lambda x, t, y, share, base, seed: _fit_predict_two_model(x, t, y, base, seed),
}


def peer_effects(name: str, frame, x: np.ndarray, base: np.ndarray, offer_ids: list[str],
                 seed: int) -> dict[str, np.ndarray]:
    """Per offer: the peer's predicted change in the outcome's probability for each base
    customer, fitted on that offer's past-campaign rows."""
    out = {}
    for offer in offer_ids:
        mine = (frame["offer_id"] == offer).to_numpy()
        t = frame["treated"].astype(bool).to_numpy()[mine].astype(int)
        y = frame["outcome"].to_numpy(float)[mine]
        if len(y) == 0 or t.min() == t.max():
            logging.getLogger(__name__).warning("%s: no campaign rows for %s", name, offer)
            out[offer] = np.zeros(len(base))
            continue
        out[offer] = PEERS[name](x[mine], t, y, float(t.mean()), base, seed)
    return out

"""Model selection by cross-validation: honest folds, the right family for the data, one interface
whatever wins (scores, reasons), deterministic under a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.spec import CATEGORY
from scoring.scorer import ChurnScorer
from training.config import TrainConfig
from training.dataset import HOLDOUT, from_table
from training.model import fit_churn_model
from training.model_card import model_card
from training.selection import fit_linear, make_folds

CONFIG = TrainConfig(lightgbm={"max_rounds": 150, "early_stopping_rounds": 20})


def _table(kind: str, n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A customer table whose churn is linear in two numbers and a plan, or an interaction
    (churn when exactly one of two flags is on) that no linear model can rank."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    noise = rng.normal(size=(n, 4))
    if kind == "linear":
        z = 1.2 * a - 0.8 * b + (plan == "pro") * 0.7 - 0.5
    else:
        z = 3.0 * ((a > 0) ^ (b > 0)) - 1.5
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    frame = pd.DataFrame({"id": [f"C{i}" for i in range(n)], "a": a, "b": b, "plan": plan,
                          **{f"noise{j}": noise[:, j] for j in range(4)}, "churned": y})
    frame.loc[rng.random(n) < 0.05, "a"] = np.nan  # missing values must not break the linear part
    return frame


@pytest.mark.parametrize("kind, expected", [("linear", {"linear", "blend"}),
                                            ("interaction", {"lightgbm", "blend"})])
def test_cross_validation_picks_a_family_that_fits_the_data(kind, expected):
    data = from_table(_table(kind), "id", "churned", CONFIG)
    scorer, info = fit_churn_model(data, CONFIG)
    sel = info.selection
    assert sel["model_family"] in expected, sel
    if kind == "linear":
        assert sel["cv_auc_linear"] > sel["cv_auc_lightgbm"], sel
    else:
        assert sel["cv_auc_lightgbm"] > sel["cv_auc_linear"] + 0.1, sel
        assert sel["tree_weight"] >= 0.5, sel


def test_folds_never_touch_the_hold_out_and_are_stratified():
    data = from_table(_table("linear"), "id", "churned", CONFIG)
    folds, kind = make_folds(data, 3, seed=1)
    assert kind == "stratified" and len(folds) == 3
    holdout = set(np.flatnonzero(data.part == HOLDOUT))
    seen = np.concatenate([f.valid for f in folds])
    assert not holdout & set(seen) and len(set(seen)) == len(seen) == len(data.y) - len(holdout)
    rate = data.y[seen].mean()
    for f in folds:
        assert not set(f.train) & set(f.valid)
        assert abs(data.y[f.valid].mean() - rate) < 0.01


def test_time_folds_validate_on_a_later_cutoff_than_they_learn_from(training_data):
    folds, kind = make_folds(training_data, 3, seed=1)
    cutoff = training_data.frame["cutoff"].to_numpy()
    assert kind == "time" and folds
    for f in folds:
        assert cutoff[f.train].max() < cutoff[f.valid].min()
        assert not (training_data.part[f.valid] == HOLDOUT).any()


def test_a_blended_or_linear_model_keeps_one_interface(tmp_path):
    data = from_table(_table("linear"), "id", "churned", CONFIG)
    scorer, info = fit_churn_model(data, CONFIG)
    assert scorer.linear is not None and scorer.tree_weight < 1, info.selection
    x = data.x[data.part == HOLDOUT]
    p = scorer.predict(x)
    p2, contrib = scorer.predict_explain(x)
    assert np.allclose(p, p2, atol=1e-9)
    assert np.allclose(contrib.sum(axis=1), scorer.margin(x), atol=1e-9)
    # the reasons see the linear part: "a" drives the score, the noise does not
    mean_abs = np.abs(contrib[:, :-1]).mean(axis=0)
    by_name = dict(zip(scorer.features, mean_abs, strict=True))
    assert by_name["a"] > 3 * max(by_name[f"noise{j}"] for j in range(4)), by_name
    back = ChurnScorer.load(scorer.save(tmp_path / "m"))
    assert np.array_equal(back.predict(x), p) and back.tree_weight == scorer.tree_weight


def test_the_linear_part_is_exactly_a_sum_over_features():
    data = from_table(_table("linear"), "id", "churned", CONFIG)
    rows = np.flatnonzero(data.part != HOLDOUT)
    part = fit_linear(data, rows, 1.0)
    x = data.x[:200]
    contrib = part.contributions(x)
    assert np.allclose(contrib.sum(axis=1), part.margin(x))
    j = data.features.index("plan")
    assert data.kinds[j] == CATEGORY
    unseen = x.copy()
    unseen[:, j] = np.nan  # an unknown plan weighs nothing
    assert (part.contributions(unseen)[:, j] == 0).all()


def test_the_cv_and_refit_path_is_deterministic_under_a_seed():
    data = from_table(_table("interaction", n=1500), "id", "churned", CONFIG)
    a, info_a = fit_churn_model(data, CONFIG)
    b, info_b = fit_churn_model(data, CONFIG)
    x = data.x[data.part == HOLDOUT]
    assert np.array_equal(a.predict(x), b.predict(x)) and info_a.selection == info_b.selection
    other = TrainConfig(seed=7, lightgbm=CONFIG.lightgbm)
    c, _ = fit_churn_model(from_table(_table("interaction", n=1500), "id", "churned", other), other)
    assert not np.array_equal(a.predict(x), c.predict(x)), "the seed changes nothing"


def test_the_model_card_names_the_winner_and_the_margin():
    sel = {"cv_folds": 3, "cv_fold_kind": "stratified", "cv_rounds": 80,
           "lightgbm_settings": "defaults", "cv_auc_lightgbm": 0.71, "cv_auc_linear": 0.74,
           "cv_auc_chosen": 0.745, "tree_weight": 0.25, "linear_c": 0.1,
           "linear_transform": "squash", "model_family": "blend"}
    card = model_card("churn", "3", "run", {"rows_fit": 10, "rows_holdout": 5}, {"roc_auc": 0.7},
                      {}, "ok", pd.Series({"a": 1.0}), "table", sel)
    assert "a blend (25% LightGBM)" in card and "0.7450" in card and "0.7100" in card

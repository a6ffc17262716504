"""Decision-path contributions: the compiled walk must take LightGBM's own decisions."""

from __future__ import annotations

import dataclasses

import lightgbm as lgb
import numpy as np
import pytest

from scoring.paths import PathExplainer
from scoring.scorer import SHAP, ChurnScorer
from training.dataset import HOLDOUT


def _booster(x, y, categorical=(), **params):
    data = lgb.Dataset(x, y, categorical_feature=list(categorical), free_raw_data=False)
    return lgb.train({"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 5,
                      "verbose": -1, "seed": 1, **params}, data, num_boost_round=40)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_raw_scores_equal_lightgbm_with_missing_values_and_categories(params):
    rng = np.random.default_rng(3)
    n = 3000
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 12, n).astype(float),
                         rng.choice([0.0, 1.0, 2.5], n), rng.exponential(size=n)])
    x[rng.random(n) < 0.15, 0] = np.nan
    x[rng.random(n) < 0.10, 1] = np.nan
    x[rng.random(n) < 0.2, 2] = 0.0
    logit = x[:, 3] - np.isin(x[:, 1], [2, 5, 7]) + np.nan_to_num(x[:, 0]) - (x[:, 2] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = _booster(x, y, categorical=[1], **params)
    explainer = PathExplainer(booster)
    # unseen and negative category codes (a code in (-1, 0) is truncated to category 0, as
    # LightGBM reads it), infinities, all-missing rows, values at LightGBM's zero threshold
    probe = np.vstack([x[:500], [[np.inf, 40.0, -np.inf, 0.0], [np.nan] * 4,
                                 [0.0, -3.0, 0.0, np.nan], [1e-36, -0.5, -1e-36, 1.0],
                                 [-0.0, 0.0, 1e-35, 2.0], [0.3, 2.9, 2.5, 1.0]]])
    raw, contrib = explainer.explain(probe)
    assert np.array_equal(raw, booster.predict(probe, raw_score=True))
    assert np.allclose(contrib.sum(axis=1), raw, atol=1e-12)
    used = {f for t in booster.dump_model()["tree_info"] for f in _features(t["tree_structure"])}
    unused = [j for j in range(4) if j not in used]
    assert np.all(contrib[:, unused] == 0)


def _features(node):
    if "split_feature" not in node:
        return set()
    return {node["split_feature"]} | _features(node["left_child"]) | _features(node["right_child"])


def test_one_row_and_many_threads_give_the_same_answer(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[training_data.rows(HOLDOUT)][:2000]
    raw, contrib = scorer.explainer.explain(x, threads=2)
    one = np.vstack([scorer.explainer.explain(x[i:i + 1], threads=1)[1] for i in range(50)])
    assert np.array_equal(contrib[:50], one)
    assert np.array_equal(raw, scorer.booster.predict(x, raw_score=True))


def test_predict_explain_gives_the_calibrated_probabilities(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[:1000]
    p, contrib = scorer.predict_explain(x)
    assert np.allclose(p, scorer.predict(x), atol=1e-12, rtol=0)
    assert np.array_equal(contrib, scorer.contributions(x))


def test_path_reasons_mostly_agree_with_treeshap(training_data, fitted):
    """Not the same method, so not the same numbers; the leading reasons should largely agree."""
    scorer, _ = fitted
    x = training_data.x[training_data.rows(HOLDOUT)][:3000]
    path = scorer.explainer.contributions(x)[:, :-1]  # the trees' part (the model may be a blend)
    shap = scorer.booster.predict(x, pred_contrib=True)[:, :-1]
    top_path = np.argsort(-path, axis=1)[:, :3]
    top_shap = np.argsort(-shap, axis=1)[:, :3]
    in_top3 = np.mean([top_shap[i, 0] in top_path[i] for i in range(len(x))])
    assert in_top3 > 0.7, in_top3


def test_a_model_can_ask_for_exact_treeshap(training_data, fitted):
    scorer, _ = fitted
    shap_scorer = dataclasses.replace(scorer, meta={**scorer.meta, "contribution_method": SHAP})
    trees_only = dataclasses.replace(shap_scorer, linear=None, tree_weight=1.0)
    x = training_data.x[:20]
    assert np.allclose(trees_only.contributions(x), scorer.booster.predict(x, pred_contrib=True))
    # with a linear part (a blend) the exact contributions still add up to the model's log-odds
    assert np.allclose(shap_scorer.contributions(x).sum(axis=1), scorer.margin(x))
    with pytest.raises(ValueError, match="contribution_method"):
        ChurnScorer(scorer.features, scorer.kinds, scorer.categories, scorer.booster,
                    scorer.calibrator, scorer.specs, {"contribution_method": "lime"})


def test_only_binary_boosters_are_walked():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                        lgb.Dataset(x, y), num_boost_round=3)
    with pytest.raises(ValueError, match="binary"):
        PathExplainer(booster)


def test_random_forest_mode_and_linear_trees():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 3))
    y = (x[:, 0] + rng.normal(size=800) > 0).astype(int)
    forest = lgb.train({"objective": "binary", "boosting": "rf", "bagging_fraction": 0.8,
                        "bagging_freq": 1, "verbose": -1}, lgb.Dataset(x, y), num_boost_round=8)
    raw, contrib = PathExplainer(forest).explain(x)
    # the forest's probability is the sigmoid of the trees' mean (its raw_score is their sum)
    assert np.allclose(1 / (1 + np.exp(-raw)), forest.predict(x), rtol=0, atol=1e-12)
    assert np.allclose(contrib.sum(axis=1), raw, atol=1e-12)
    linear = lgb.train({"objective": "binary", "linear_tree": True, "verbose": -1},
                       lgb.Dataset(x, y), num_boost_round=3)
    with pytest.raises(ValueError, match="linear trees"):
        PathExplainer(linear)


def _blended(scorer, tree_weight: float):
    """The fitted scorer as a blend with a linear part (random weights, the model's own kinds)."""
    from features.spec import CATEGORY
    from scoring.linear import LinearPart

    rng = np.random.default_rng(8)
    n = len(scorer.features)
    part = LinearPart(tuple(scorer.kinds), tuple(rng.normal(size=n)),
                      tuple(rng.uniform(0.5, 2, size=n)), tuple(rng.normal(scale=0.1, size=n)),
                      tuple(rng.normal(scale=0.1, size=n)), tuple(rng.uniform(0, 0.3, size=n)),
                      tuple(tuple(rng.normal(size=len(scorer.categories[name])))
                            if kind == CATEGORY else ()
                            for name, kind in zip(scorer.features, scorer.kinds, strict=True)),
                      -1.2)
    return dataclasses.replace(scorer, linear=part, tree_weight=tree_weight)


def _probe(scorer, x, impossible: bool = True):
    """Rows as they come, plus missing category codes and (``impossible``) codes that no
    training category has, or negative ones: the matrix encoding never makes those, but the
    trees must still take LightGBM's decisions on them."""
    from features.spec import CATEGORY

    cats = [j for j, k in enumerate(scorer.kinds) if k == CATEGORY]
    assert cats, "the sample model should have categorical features"
    x = x.copy()
    x[::5, cats] = np.nan
    if impossible:
        x[1::7, cats] = 99.0
        x[2::11, cats] = -1.0
    return x


@pytest.mark.parametrize("tree_weight", [1.0, 0.6])
def test_one_pass_scores_equal_lightgbm_and_top_reasons_equal_the_full_contributions(
        training_data, fitted, tree_weight):
    """The batch path's compiled pass (scores + each row's top contributions, no full array) gives
    LightGBM's (or the blend's) probabilities and the reasons of the full contributions."""
    from scoring.reasons import reason_texts, top_positive

    base, _ = fitted  # model selection may have chosen a blend: both cases are built here
    scorer = (dataclasses.replace(base, linear=None, tree_weight=1.0) if tree_weight == 1.0
              else _blended(base, tree_weight))
    x = _probe(scorer, training_data.x[training_data.rows(HOLDOUT)][:2000])
    tree_raw = scorer.booster.predict(x, raw_score=True)
    if scorer.linear is None:
        expected = scorer.calibrator(scorer.booster.predict(x))
    else:
        link = scorer.explainer.sigmoid
        margin = tree_weight * link * tree_raw + (1 - tree_weight) * scorer.linear.margin(x)
        expected = scorer.calibrator(1 / (1 + np.exp(-margin)))
    contrib = scorer.contributions(x)
    width = len(scorer.features)
    for layout, threads in (("C", 1), ("F", 2), ("F", 1)):
        p, order, top = scorer.predict_top(np.asarray(x, order=layout), 3, threads)
        np.testing.assert_allclose(p, np.clip(expected, 0, 1), rtol=0, atol=1e-6)
        assert np.array_equal(order, top_positive(contrib[:, :width], 3)), layout
        picked = np.take_along_axis(contrib, np.maximum(order, 0), 1)
        np.testing.assert_allclose(np.where(order >= 0, picked, 0.0), top, rtol=0, atol=1e-12)
    # the sentences: the same as from the full contributions (the previous implementation), on
    # a matrix as the encoding makes it (a category is a training code or missing)
    x = _probe(scorer, training_data.x[training_data.rows(HOLDOUT)][:2000], impossible=False)
    contrib = scorer.contributions(x)
    p, order, _ = scorer.predict_top(x, 3)
    rows = np.arange(len(x)) % 4 != 0
    assert list(reason_texts(scorer, x, None, 3, rows, order=order)) == \
        list(reason_texts(scorer, x, contrib, 3, rows))
    if scorer.linear is not None:  # the blend really moves the scores
        assert np.abs(p - np.clip(scorer.calibrator(scorer.booster.predict(x)), 0, 1)).max() > 1e-3

"""Per-customer reasons: the largest risk-raising contributions, told in the feature's words."""

from __future__ import annotations

import numpy as np

from scoring.reasons import reasons_for_rows, top_reasons
from training.dataset import HOLDOUT


def test_reasons_are_the_largest_risk_raising_contributions(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[training_data.rows(HOLDOUT)][:300]
    contrib = scorer.contributions(x)
    for i in range(0, 300, 37):
        reasons = top_reasons(scorer, x[i], contrib[i], k=3)
        assert len(reasons) <= 3
        values = [r.contribution for r in reasons]
        assert values == sorted(values, reverse=True)
        assert all(r.direction == "raises" and r.contribution > 0 for r in reasons)
        positive = np.sort(contrib[i, :-1][contrib[i, :-1] > 0])[::-1][:3]
        assert np.allclose(values, positive.round(4), atol=1e-4)


def test_reasons_read_as_sentences(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[training_data.rows(HOLDOUT)][:500]
    texts = [r.text for rs in reasons_for_rows(scorer, x, k=5) for r in rs]
    bad = [t for t in texts if "{" in t or " nan" in t or t.startswith("nan")]
    assert texts and not bad, bad[:10]
    # silence is told in words ("no order for 120 days", "no web_session event for 40 days")
    silence = [t for t in texts if t.startswith("no ") and t.endswith(" days")]
    assert silence, texts[:10]


def test_contributions_add_up_to_the_raw_score(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[:100]
    raw = scorer.margin(x)  # the model's log-odds: the trees', or the blend with a linear part
    assert np.allclose(scorer.contributions(x).sum(axis=1), raw)
    if scorer.linear is None:
        assert np.allclose(raw, scorer.booster.predict(x, raw_score=True))


def test_a_risk_lowering_view_is_available(training_data, fitted):
    scorer, _ = fitted
    x = training_data.x[:1]
    both = top_reasons(scorer, x[0], scorer.contributions(x)[0], k=6, risk_only=False)
    assert {r.direction for r in both} <= {"raises", "lowers"} and len(both) == 6


def test_batch_reason_texts_equal_the_per_customer_reasons(training_data, fitted):
    import json

    from scoring.reasons import reason_texts

    scorer, _ = fitted
    x = training_data.x[training_data.rows(HOLDOUT)][:1500]
    contrib = scorer.contributions(x)
    rows = np.arange(len(x)) % 5 != 0
    for k in (1, 3, 5):
        texts = reason_texts(scorer, x, contrib, k, rows)
        expected = [json.dumps([r.text for r in top_reasons(scorer, x[i], contrib[i], k)])
                    if rows[i] else "[]" for i in range(len(x))]
        assert list(texts) == expected
    assert list(reason_texts(scorer, x[:3], contrib[:3], 0)) == ["[]"] * 3


def test_sentences_in_bulk_equal_one_by_one(fitted):
    import json

    from scoring.reasons import _phrases

    scorer, _ = fitted
    values = np.array([0.0, -0.0, 1.0, 0.004999, 0.5, 0.995, 0.999999, 1.05, 1.25, 99.95, 99.96,
                       100.5, 101.5, 102.5, 2.5e6, 99_999.5, 100_000.0, -3.25, -0.5, -0.4, -100.5,
                       7.000000001, 1e-12, np.nan, 12.3456, 2.0000000001, 3.4999999999])
    for name, kind in zip(scorer.features, scorer.kinds, strict=True):
        probe = values if kind != "category" else np.array(
            [0.0, np.nan, float(len(scorer.categories[name]) - 1)])
        got = list(_phrases(scorer, name, probe))
        want = [json.dumps(scorer.spec(name).say(scorer.decode(name, v)))[1:-1] for v in probe]
        assert got == want, name


def test_top_positive_breaks_ties_by_column_like_a_stable_sort():
    from scoring.reasons import top_positive

    rng = np.random.default_rng(5)
    c = rng.integers(-3, 4, size=(4000, 12)).astype(float)  # many ties, at every rank
    c[::7, 3] = np.nan
    for k in (1, 3, 5, 12, 20):
        want = np.argsort(-np.nan_to_num(c, nan=-1), axis=1, kind="stable")[:, :k]
        positive = np.take_along_axis(np.nan_to_num(c, nan=-1), want, axis=1) > 0
        want = np.where(positive, want, -1)
        got = top_positive(c, k)
        assert got.shape == (len(c), k)
        assert np.array_equal(got[:, :min(k, 12)], want), k

"""The linear part's contributions: computed as one block, equal to the per-feature definition."""

from __future__ import annotations

import numpy as np
import pytest

from features.spec import CATEGORY, NUMBER
from scoring.linear import TRANSFORMS, LinearPart


def _by_feature(part: LinearPart, x: np.ndarray) -> np.ndarray:
    """The definition, one feature at a time: a weighted standardised (transformed) number plus a
    weight for "missing" against its training share; a category's own weight (unseen: 0)."""
    out = np.zeros((len(x), len(part.kinds) + 1))
    for j, kind in enumerate(part.kinds):
        for i, v in enumerate(x[:, j]):
            if kind == CATEGORY:
                w = part.category_weights[j]
                out[i, j] = w[int(v)] if np.isfinite(v) and 0 <= int(v) < len(w) else 0.0
            elif np.isnan(v):
                out[i, j] = part.missing_weight[j] * (1 - part.missing_share[j])
            else:
                z = (TRANSFORMS[part.transform](np.array([v]))[0] - part.center[j]) / part.scale[j]
                out[i, j] = part.weight[j] * z - part.missing_weight[j] * part.missing_share[j]
    out[:, -1] = part.intercept
    return out


@pytest.mark.parametrize("transform", ["squash", "identity"])
def test_block_contributions_equal_the_per_feature_definition(transform):
    rng = np.random.default_rng(3)
    kinds = (NUMBER, CATEGORY, NUMBER, NUMBER, CATEGORY, NUMBER)
    n = len(kinds)
    part = LinearPart(kinds, tuple(rng.normal(size=n)), tuple(rng.uniform(0.5, 2, size=n)),
                      tuple(rng.normal(size=n)), tuple(rng.normal(size=n)),
                      tuple(rng.uniform(0, 0.3, size=n)),
                      tuple(tuple(rng.normal(size=3)) if k == CATEGORY else () for k in kinds),
                      0.7, transform)
    x = rng.normal(scale=50, size=(400, n))
    for j, k in enumerate(kinds):
        if k == CATEGORY:
            x[:, j] = rng.integers(-1, 5, size=len(x))  # -1 and 3, 4: categories never seen
    x[rng.random(x.shape) < 0.2] = np.nan
    for j in [j for j, k in enumerate(kinds) if k == CATEGORY]:
        # codes are truncated toward zero; huge and infinite values are never seen
        x[:8, j] = [-0.5, 2.7, -1.5, np.inf, -np.inf, 1e300, -1e300, 3.0 - 1e-9]
    got = part.contributions(x)
    np.testing.assert_allclose(got, _by_feature(part, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(part.margin(x), got.sum(axis=1), rtol=0, atol=0)
    # one row at a time (the API's call) gives the same numbers as the block
    assert np.array_equal(np.vstack([part.contributions(x[i:i + 1]) for i in range(5)]), got[:5])

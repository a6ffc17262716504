"""The learnt offer effects at scoring time: the compiled products equal the definition."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.offers.uplift import CLIP, standardise, standardised_products


def _features(n: int = 400, d: int = 7) -> np.ndarray:
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 4.0, (n, d))
    x[::5, 1] = np.nan
    x[3, 2], x[4, 2], x[5, 3] = np.inf, -np.inf, 1e9  # clipped to +/- CLIP standard deviations
    return x


@pytest.mark.parametrize("layout", ["C", "F"])
def test_compiled_products_equal_the_standardised_matrix_times_the_weights(layout):
    x = _features()
    rng = np.random.default_rng(6)
    center, spread = rng.normal(size=x.shape[1]), rng.uniform(0.5, 3.0, x.shape[1])
    weights = rng.normal(size=(x.shape[1], 4))
    s = standardise(x, center, spread)
    assert np.abs(s).max() == CLIP and (s[::5, 1] == 0).all(), "the probe exercises clip and NaN"
    got = standardised_products(np.asarray(x, order=layout), center, spread, weights)
    np.testing.assert_allclose(got, s @ weights, rtol=0, atol=1e-12)
    # a product does not depend on the others computed in the same call
    alone = standardised_products(x, center, spread, weights[:, 2:3])
    assert np.array_equal(got[:, 2], alone[:, 0])


def test_no_rows_give_no_products():
    out = standardised_products(np.empty((0, 3)), np.zeros(3), np.ones(3), np.ones((3, 2)))
    assert out.shape == (0, 2)

"""The log-odds link, defined once. It sits in the bottom layer so that every package (the sample
generator, the scoring core, training) can import it."""

from __future__ import annotations

import numpy as np


def logit(p, eps: float = 1e-12) -> np.ndarray:
    """log(p / (1 - p)), with ``p`` clipped to [eps, 1 - eps] so that 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def sigmoid(z) -> np.ndarray:
    """The inverse of ``logit``: 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))

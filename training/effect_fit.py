"""The estimators of the offer-effect model (``scoring.offers.uplift``): a logistic regression
with the churn model's log-odds as offset, fitted by Newton's method with a ridge penalty per
column, per offer (``fit_offer``) or pooled across offers (``fit_pooled``). ``training.uplift``
decides what they are fitted on and how far the result is trusted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.numeric import sigmoid
from scoring.offers.catalogue import UpliftSettings


def fit_offset_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray,
                        ridge: float | np.ndarray = 1e-2, iterations: int = 50) -> np.ndarray:
    """Logistic regression with an offset, by Newton's method; ``ridge`` is one penalty or one
    per column."""
    beta = np.zeros(x.shape[1])
    penalty = np.broadcast_to(np.asarray(ridge, dtype=float), beta.shape)
    for _ in range(iterations):
        mu = sigmoid(offset + x @ beta)
        w = mu * (1 - mu)
        hessian = x.T @ (x * w[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hessian, x.T @ (y - mu) - penalty * beta)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def fit_offer(s: np.ndarray, treated: np.ndarray, y: np.ndarray, offset: np.ndarray,
               settings: UpliftSettings, varies: np.ndarray | None = None
               ) -> tuple[float, np.ndarray, float, np.ndarray]:
    """(c, main, a, inter) of the per-offer model on standardised features ``s``; the effect
    varies only with the columns in ``varies`` (all when None; ``inter`` is 0 elsewhere)."""
    k = s.shape[1]
    varies = np.ones(k, dtype=bool) if varies is None else varies
    design = np.column_stack([np.ones(len(y)), s, treated, treated[:, None] * s[:, varies]])
    ridge = np.concatenate([[1e-4], np.full(k, settings.ridge_risk), [1e-4],
                            np.full(int(varies.sum()), settings.ridge_effect)])
    beta = fit_offset_logistic(design, y, offset, ridge)
    inter = np.zeros(k)
    inter[varies] = beta[k + 2:]
    return float(beta[0]), beta[1:k + 1], float(beta[k + 1]), inter


@dataclass
class PooledFit:
    """The pooled model: one risk correction (c, main) shared by every offer's campaign rows,
    and per offer its effect (a, inter)."""

    c: float
    main: np.ndarray
    effects: dict[int, tuple[float, np.ndarray]]  # offer index -> (a, inter)


def fit_pooled(s: np.ndarray, offer: np.ndarray, treated: np.ndarray, y: np.ndarray,
               offset: np.ndarray, settings: UpliftSettings, varies: dict[int, np.ndarray],
               rounds: int = 2) -> PooledFit:
    """Fit the model of ``scoring.offers.uplift`` for all offers at once: the correction of the
    churn model's risk to the campaign outcome is shared (every hold-out, of any offer, tells
    it what happens without an offer), each offer keeps its own effect. By backfitting: (1) the
    shared correction with one treated intercept per offer, the offers' varying effects as
    offset; (2) per offer in ``varies`` its effect on its treated rows, the shared correction as
    offset; ``rounds`` times. ``offer``: each row's offer index."""
    k = s.shape[1]
    present = np.unique(offer)
    dummies = np.column_stack([(offer == o) & (treated == 1) for o in present]).astype(float)
    effects = {int(o): (0.0, np.zeros(k)) for o in varies}
    varying = np.zeros(len(y))
    c, main = 0.0, np.zeros(k)
    for _ in range(rounds):
        design = np.column_stack([np.ones(len(y)), s, dummies])
        ridge = np.concatenate([[1e-4], np.full(k, settings.ridge_risk),
                                np.full(len(present), 1e-4)])
        beta = fit_offset_logistic(design, y, offset + varying, ridge)
        c, main = float(beta[0]), beta[1:k + 1]
        base = offset + c + s @ main
        for o, cols in varies.items():
            rows = (offer == o) & (treated == 1)
            d = np.column_stack([np.ones(int(rows.sum())), s[rows][:, cols]])
            b = fit_offset_logistic(d, y[rows], base[rows], np.concatenate(
                [[1e-4], np.full(int(cols.sum()), settings.ridge_effect)]))
            inter = np.zeros(k)
            inter[cols] = b[1:]
            effects[int(o)] = (float(b[0]), inter)
            varying[rows] = s[rows] @ inter
    return PooledFit(c, main, effects)

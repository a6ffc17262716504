"""The shared parts of the BTYD models: settings, parameters, the fitting helpers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize

from features.errors import BadInput

log = logging.getLogger(__name__)

DAY_SNAP = 1e-9  # days; see _calendar_day
LOG_BOUND = 13.8  # parameters kept in [1e-6, 1e6] (in the fit's scales); at the bound = not identified


class BtydConfig(BaseModel):
    """How the BTYD models are fitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fit_sample: int = Field(200_000, gt=0, description="customers the fit uses at most (random subsample)")
    seed: int = Field(0, description="seed of that subsample")
    penalizer: float = Field(0.0, ge=0, description="L2 coefficient on the parameters, as lifetimes'")
    min_customers: int = Field(20, gt=0, description="fewer customers with an order: no fit, NaN features")
    min_repeat_buyers: int = Field(5, gt=0, description="fewer repeat buyers: no fit, NaN features")


class BtydFitError(BadInput):
    """The data cannot identify the model's parameters."""


@dataclass(frozen=True)
class PurchaseSummary:
    """Per customer (NaN without an order): x, t_x and T in days, mean repeat order value."""

    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    monetary: np.ndarray


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD: purchase rate ~ Gamma(r, alpha) (alpha in the time unit of the fit), dropout ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma: order value ~ Gamma(p, nu), nu ~ Gamma(q, v) (v in currency)."""

    p: float
    q: float
    v: float



# ---------------------------------------------------------------------------------------------
# shared fitting helpers


def _check_history(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> None:
    if not (len(x) == len(tx) == len(T)):
        raise ValueError("frequency, recency and age must have the same length")
    if len(x) == 0:
        raise BtydFitError("no customer with an order: BG/NBD not identified")
    if not (np.isfinite(x).all() and np.isfinite(tx).all() and np.isfinite(T).all()):
        raise ValueError("frequency, recency and age must be finite (drop customers without orders)")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    if (tx < 0).any() or (tx > T).any() or (tx[x == 0] != 0).any():
        raise ValueError("recency must be in [0, age], and 0 for customers without repeat purchase")


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of products without BLAS, whose threads spin and crawl on a machine shared with other work."""
    return float(np.sum(a * b))


def _minimise(nll, theta0: np.ndarray, args: tuple, model: str) -> np.ndarray:
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(theta0)
    with np.errstate(all="ignore"):
        # TNC rather than L-BFGS-B: L-BFGS-B calls (threaded) BLAS on every step, which cost 15 ms
        # a step on a busy 2-core machine, ten times a whole CDNOW fit; TNC takes no BLAS
        res = minimize(nll, theta0, args=args, jac=True, method="TNC", bounds=bounds,
                       options={"maxfun": 2000, "ftol": 0.0, "xtol": 1e-12, "gtol": 1e-9})
        if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
            raise BtydFitError(f"{model} fit gave non-finite values: {res.message}")
        if np.any(np.abs(res.x) >= LOG_BOUND - 1e-6):
            raise BtydFitError(f"{model} parameter at its bound ({np.exp(res.x)}): the data do not "
                               "identify the model")
        theta, grad = _polish(nll, res.x, args)
    # a stop on "cannot improve the last digits" is accepted when the gradient says it is a maximum
    if not (res.success or np.max(np.abs(grad)) < 1e-6):
        raise BtydFitError(f"{model} fit did not converge: {res.message}")
    return theta


def _polish(nll, theta: np.ndarray, args: tuple, steps: int = 3,
            h: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps with a finite-difference Hessian of the exact gradient.

    TNC stops where the likelihood is flat along a ridge (Gamma-Gamma's q and v move together)
    with the parameters right to about 1e-5; two Newton steps take them to the last digits. A step
    is kept only if it lowers both the objective (up to rounding) and the gradient.
    """
    f, g = nll(theta, *args)
    for _ in range(steps):
        if np.max(np.abs(g)) < 1e-12:
            break
        hess = np.array([(nll(theta + h * e, *args)[1] - g) / h for e in np.eye(len(theta))])
        hess = (hess + hess.T) / 2
        if not np.all(np.isfinite(hess)) or np.any(np.linalg.eigvalsh(hess) <= 0):
            break
        step = theta - np.linalg.solve(hess, g)
        if np.any(np.abs(step) >= LOG_BOUND):
            break
        f_new, g_new = nll(step, *args)
        if not (f_new <= f + 1e-12 and np.max(np.abs(g_new)) < np.max(np.abs(g))):
            break
        theta, f, g = step, f_new, g_new
    return theta, g



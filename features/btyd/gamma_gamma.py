"""Gamma-Gamma: fitting (p, q, v) and the expected mean order value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from features.btyd.base import BtydFitError, GammaGammaParams, _dot, _minimise

# ---------------------------------------------------------------------------------------------
# Gamma-Gamma


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray, *, penalizer: float = 0.0,
                    min_repeat_buyers: int = 1) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from repeat buyers (x > 0, mean value m > 0)."""
    x, m = np.asarray(frequency, dtype=np.float64), np.asarray(monetary, dtype=np.float64)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < min_repeat_buyers or len(x) == 0:
        raise BtydFitError(f"{len(x)} repeat buyers with a positive order value: at least "
                           f"{max(min_repeat_buyers, 1)} needed to fit Gamma-Gamma")
    if np.ptp(m) == 0:
        raise BtydFitError("all repeat buyers have the same mean order value: Gamma-Gamma not identified")
    money = float(m.mean())
    theta = _minimise(_gamma_gamma_nll, np.log([1.0, 2.0, 1.0]),
                      (_GammaGammaData.of(x, m / money), penalizer), "Gamma-Gamma")
    p, q, v = np.exp(theta)
    return GammaGammaParams(float(p), float(q), float(v * money))


@dataclass(frozen=True)
class _GammaGammaData:
    """Fit rows (equal weights); sums that do not depend on the parameters computed once."""

    x: np.ndarray
    m: np.ndarray
    xu: np.ndarray  # distinct x
    wu: np.ndarray  # share of rows with each distinct x
    mean_x_ln_xm: float  # mean of x ln(x m)
    mean_ln_m: float

    @classmethod
    def of(cls, x, m) -> _GammaGammaData:
        xu, counts = np.unique(x, return_counts=True)
        return cls(x, m, xu, counts / len(x), float(np.mean(x * np.log(x * m))),
                   float(np.mean(np.log(m))))


def _gamma_gamma_nll(theta: np.ndarray, d: _GammaGammaData, penalizer: float) -> tuple[float, np.ndarray]:
    """Negative mean log-likelihood of the mean order values (Hardie's note 025) and its gradient."""
    p, q, v = np.exp(theta)
    pxu = p * d.xu
    ln_xmv = np.log(d.x * d.m + v)
    psi = digamma(pxu + q)
    ll = _dot(d.wu, gammaln(pxu + q) - gammaln(pxu)) - gammaln(q) + q * np.log(v) \
        + p * d.mean_x_ln_xm - d.mean_ln_m - np.mean((p * d.x + q) * ln_xmv)
    g_p = _dot(d.wu, d.xu * (psi - digamma(pxu))) + d.mean_x_ln_xm - np.mean(d.x * ln_xmv)
    g_q = _dot(d.wu, psi) - digamma(q) + np.log(v) - ln_xmv.mean()
    g_v = q / v - np.mean((p * d.x + q) / (d.x * d.m + v))
    params = np.array([p, q, v])
    grad = -params * np.array([g_p, g_q, g_v]) + 2 * penalizer * params ** 2
    return float(-ll + penalizer * (params ** 2).sum()), grad


def expected_order_value(params: GammaGammaParams, frequency: np.ndarray,
                         monetary: np.ndarray) -> np.ndarray:
    """E[mean order value | x, m]: the customer's mean shrunk towards the population mean.

    Customers without repeat purchase (x = 0, m ignored) get the population mean p v / (q - 1);
    NaN where it does not exist (q <= 1 and too little own history).
    """
    p, q, v = params.p, params.q, params.v
    x = np.asarray(frequency, dtype=np.float64)
    m = np.where(x > 0, np.asarray(monetary, dtype=np.float64), 0.0)
    den = p * x + q - 1
    out = np.full(len(x), np.nan)
    ok = den > 0
    out[ok] = (p * v + p * x[ok] * m[ok]) / den[ok]
    return out



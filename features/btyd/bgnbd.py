"""BG/NBD: fitting (r, alpha, a, b), P(alive) and expected purchases."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1

from features.btyd.base import BgNbdParams, BtydFitError, _check_history, _dot, _minimise

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# BG/NBD


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, *,
              penalizer: float = 0.0, min_repeat_buyers: int = 1) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters from complete (x, t_x, T) rows (any time unit)."""
    x, tx, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, age))
    _check_history(x, tx, T)
    if int((x > 0).sum()) < min_repeat_buyers:
        raise BtydFitError(f"{int((x > 0).sum())} repeat buyers among {len(x)} customers: "
                           f"at least {min_repeat_buyers} needed to fit BG/NBD")
    if T.max() <= 0:
        raise BtydFitError("no customer has any history before the cutoff (all ages are 0)")
    if np.ptp(x) == np.ptp(tx) == np.ptp(T) == 0:
        raise BtydFitError(f"all {len(x)} customers have the same history: BG/NBD not identified")
    (x, tx, T), w = _distinct_histories(x, tx, T)
    scale = 1.0 / T.max()
    theta = _minimise(_bgnbd_nll, np.zeros(4), (_BgNbdData.of(x, tx * scale, T * scale, w), penalizer),
                      "BG/NBD")
    r, alpha, a, b = np.exp(theta)
    return BgNbdParams(float(r), float(alpha / scale), float(a), float(b))


def _distinct_histories(x: np.ndarray, tx: np.ndarray,
                        T: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Identical (x, t_x, T) rows once, with their count: the same likelihood, fewer terms.

    Whole-day histories (the usual case: about 200k customers make 80k distinct histories) are
    packed into one integer key; other values are fitted row by row.
    """
    whole = (np.all(x == np.round(x)) and np.all(tx == np.round(tx)) and np.all(T == np.round(T))
             and max(x.max(), T.max()) < 2 ** 20)
    if not whole:
        return (x, tx, T), np.ones(len(x))
    key = (x.astype(np.int64) << 42) | (tx.astype(np.int64) << 21) | T.astype(np.int64)
    key, counts = np.unique(key, return_counts=True)
    mask = (1 << 21) - 1
    rows = ((key >> 42).astype(np.float64), ((key >> 21) & mask).astype(np.float64),
            (key & mask).astype(np.float64))
    return rows, counts.astype(np.float64)


@dataclass(frozen=True)
class _BgNbdData:
    """Fit rows with weights w summing to 1; terms of x alone are computed once per distinct x."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    rep: np.ndarray  # x > 0
    xu: np.ndarray  # distinct x
    xi: np.ndarray  # row -> position in xu
    wu: np.ndarray  # weight of each distinct x

    @classmethod
    def of(cls, x, tx, T, counts) -> _BgNbdData:
        w = counts / counts.sum()
        xu, xi = np.unique(x, return_inverse=True)
        return cls(x, tx, T, w, x > 0, xu, xi, np.bincount(xi, weights=w))


def _bgnbd_nll(theta: np.ndarray, d: _BgNbdData, penalizer: float) -> tuple[float, np.ndarray]:
    """Negative mean log-likelihood (Fader, Hardie & Lee 2005, eq. 6) and its gradient in log-params."""
    r, alpha, a, b = np.exp(theta)
    xu, x = d.xu, d.x
    # terms of x alone: ln G(r+x) - ln G(r) and the beta-function ratio, their derivatives
    lead = gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + xu) - gammaln(b) \
        - gammaln(a + b + xu)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + xu)
    lead_r = digamma(r + xu) - digamma(r)
    lead_a = psi_ab - psi_abx
    lead_b = psi_ab + digamma(b + xu) - digamma(b) - psi_abx
    ln_b_x1 = np.log(np.where(xu > 0, b + xu - 1, 1.0))[d.xi]  # b + x - 1, repeat buyers only
    # per row: the two ways of having made x repeat purchases by T (alive now / died at t_x)
    ln_at, ln_ar = np.log(alpha + d.T), np.log(alpha + d.tx)
    a3 = -(r + x) * ln_at
    a4 = np.where(d.rep, np.log(a) - ln_b_x1 - (r + x) * ln_ar, -np.inf)
    top = np.maximum(a3, a4)
    e3, e4 = np.exp(a3 - top), np.exp(a4 - top)
    w3, w4 = d.w * e3 / (e3 + e4), d.w * e4 / (e3 + e4)
    ll = _dot(d.wu, lead) + r * np.log(alpha) + _dot(d.w, top + np.log(e3 + e4))
    g_r = _dot(d.wu, lead_r) + np.log(alpha) - _dot(w3, ln_at) - _dot(w4, ln_ar)
    g_alpha = r / alpha - _dot(w3, (r + x) / (alpha + d.T)) - _dot(w4, (r + x) / (alpha + d.tx))
    g_a = _dot(d.wu, lead_a) + w4.sum() / a
    g_b = _dot(d.wu, lead_b) - _dot(w4, np.exp(-ln_b_x1))
    params = np.array([r, alpha, a, b])
    grad = -params * np.array([g_r, g_alpha, g_a, g_b]) + 2 * penalizer * params ** 2
    return float(-ll + penalizer * (params ** 2).sum()), grad


def p_alive(params: BgNbdParams, frequency: np.ndarray, recency: np.ndarray,
            age: np.ndarray) -> np.ndarray:
    """P(still alive | x, t_x, T) (Hardie's note 021); 1 for a customer without repeat purchase."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, tx, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, age))
    with np.errstate(invalid="ignore", divide="ignore"):
        log_odds_dead = (r + x) * (np.log(alpha + T) - np.log(alpha + tx)) \
            + np.log(a) - np.log(b + np.maximum(x, 1) - 1)
        return np.where(x == 0, 1.0, expit(-log_odds_dead))


def expected_orders(params: BgNbdParams, horizon: float, frequency: np.ndarray,
                    recency: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Expected purchases in (T, T + horizon] given (x, t_x, T) (Fader, Hardie & Lee 2005, eq. 10).

    The term ``(1 - z)^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)``, z = horizon / (alpha + T +
    horizon), is evaluated in whichever of its two forms has a 2F1 that converges at z = 1: as
    written when ``a - 1 - r - x >= 0``, otherwise Euler-transformed to ``(1 - z)^(a - 1)
    2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)``. Neither overflows for heavy buyers or long
    horizons (lifetimes' formula gives inf or NaN there). NaN where the result is not finite.
    """
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1) > 1e-9 else 1 + 1e-9  # removable singularity at a = 1
    x, tx, T = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frequency, recency, age)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z = horizon / (alpha + T + horizon)
        c = a + b + x - 1
        tail = np.empty(x.shape)
        direct = a - 1 - r - x >= 0
        e = ~direct
        tail[direct] = (1 - z[direct]) ** (r + x[direct]) \
            * hyp2f1(r + x[direct], b + x[direct], c[direct], z[direct])
        tail[e] = (1 - z[e]) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c[e], z[e])
        numerator = c / (a - 1) * (1 - tail)
        odds_dead = np.where(x > 0, a / (b + np.maximum(x, 1) - 1)
                             * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        out = numerator / (1 + odds_dead)
    return np.where(np.isfinite(out), out, np.nan)



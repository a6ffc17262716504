"""Buy-till-you-die features for non-contractual customers: BG/NBD and Gamma-Gamma, numpy/scipy only.

From the orders strictly before the cutoff, each customer's purchase history is summarised the
way ``lifetimes.utils.summary_data_from_transaction_data(..., freq="D")`` does, in **days**:

- ``frequency`` x: repeat purchases = distinct calendar days with an order, minus one;
- ``recency`` t_x: days from the first to the last purchase day;
- ``age`` T: days from the first purchase day to the cutoff's calendar day;
- ``monetary`` m: mean amount of the repeat purchase days (amounts of one day summed, the first
  day left out); NaN for a customer without repeat purchases.

Two models are fitted on those summaries, once per call of :func:`add_btyd`:

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): parameters
  (r, alpha, a, b), alpha in days; P(alive) and the expected number of purchase days in the next
  ``h`` days given the history.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Hardie's note 025): parameters (p, q, v),
  v in currency; the expected mean order value given the history, fitted on repeat buyers only.

Both maximise the mean log-likelihood over log-parameters (bounded truncated Newton, TNC,
with the exact gradient) minus ``penalizer * sum(params ** 2)``, the L2 term of lifetimes' ``penalizer_coef``:
for BG/NBD it acts, as in lifetimes, on the parameters in the fit's time scale (oldest customer's
age = 1), so the same coefficient means the same thing; for Gamma-Gamma on parameters with money
scaled by the mean order value (lifetimes uses the raw currency, which only matters when the
penalizer is not 0). Above ``fit_sample`` customers the fit uses a random subsample of that many
(fixed seed); identical histories are counted once with a weight, and terms of the likelihood
that depend on the number of repeat purchases alone are computed once per distinct number.
Predictions are made for every customer.

Data that cannot identify a model (no orders, no or too few repeat buyers, identical histories,
a parameter at its bound, no convergence) raise :class:`BtydFitError` from the fit functions;
:func:`add_btyd` logs a warning and writes NaN columns instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from features.events import DAY_NS, EventView
from features.families import FeatureSink

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


class BtydFitError(ValueError):
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
# purchase summary


def summarise(orders: EventView) -> PurchaseSummary:
    """x, t_x, T (days) and mean repeat order value per customer from orders before the cutoff."""
    n = orders.n
    codes = orders.codes
    day = _calendar_day(orders)
    amount = np.nan_to_num(orders.col("amount")) if orders.has("amount") else np.zeros(len(codes))
    if len(codes) > 1 and not _grouped_in_time(codes, day):
        order = np.lexsort((day, codes))
        codes, day, amount = codes[order], day[order], amount[order]
    new_day = np.ones(len(codes), dtype=bool)
    new_day[1:] = (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])
    owner, day_of = codes[new_day], day[new_day]
    day_amount = np.bincount(np.cumsum(new_day) - 1, weights=amount, minlength=len(owner))
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    last = np.ones(len(owner), dtype=bool)
    last[:-1] = owner[1:] != owner[:-1]
    first_day, last_day = np.full(n, np.nan), np.full(n, np.nan)
    first_day[owner[first]] = day_of[first]
    last_day[owner[last]] = day_of[last]
    n_days = np.bincount(owner, minlength=n).astype(np.float64)
    frequency = np.where(n_days > 0, n_days - 1, np.nan)
    repeat_total = np.bincount(owner[~first], weights=day_amount[~first], minlength=n)
    monetary = np.full(n, np.nan)
    rep = frequency > 0
    monetary[rep] = repeat_total[rep] / frequency[rep]
    return PurchaseSummary(frequency, last_day - first_day, -first_day, monetary)


def _calendar_day(orders: EventView) -> np.ndarray:
    """Each order's calendar day minus the cutoff's (<= 0), as lifetimes' ``to_period("D")``.

    The view holds ages as float days before the cutoff, exact to about 1e-12 days. An order
    stamped at midnight must not slip to the day before by that error, so orders in the last
    ``DAY_SNAP`` days (86 microseconds) before a midnight count on the next day (never later
    than the cutoff's day).
    """
    into_day = (int(orders.cutoff_ns) % DAY_NS) / DAY_NS  # the cutoff's time of day, in days
    return np.minimum(np.floor(into_day - orders.age + DAY_SNAP), 0.0)


def _grouped_in_time(codes: np.ndarray, day: np.ndarray) -> bool:
    same = codes[1:] == codes[:-1]
    return bool(np.all(codes[1:] >= codes[:-1]) and np.all(day[1:][same] >= day[:-1][same]))


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


# ---------------------------------------------------------------------------------------------
# the feature family


def add_btyd(sink: FeatureSink, orders: EventView, tenure_days: np.ndarray, horizon_days: int,
             config: BtydConfig) -> None:
    """P(alive), expected orders and expected order value in the next ``horizon_days`` days.

    ``orders`` holds only orders before the cutoff (amounts in column "amount"). The BG/NBD clock
    starts at the first purchase, not at signup, so ``tenure_days`` only fixes the number of
    customers. Customers without an order, and every customer when a model cannot be fitted
    (logged as a warning), get NaN.
    """
    if len(tenure_days) != orders.n:
        raise ValueError(f"tenure_days has {len(tenure_days)} customers, orders {orders.n}")
    h = int(horizon_days)
    s = summarise(orders)
    alive, n_orders, value = (np.full(orders.n, np.nan) for _ in range(3))
    has = np.isfinite(s.frequency)
    x, tx, T, m = s.frequency[has], s.recency[has], s.age[has], s.monetary[has]
    fit_rows = _fit_rows(len(x), config)
    bg = _try(lambda: _fit_bgnbd_checked(x[fit_rows], tx[fit_rows], T[fit_rows], config), "BG/NBD")
    if bg is not None:
        alive[has] = p_alive(bg, x, tx, T)
        n_orders[has] = expected_orders(bg, h, x, tx, T)
        if np.isnan(n_orders[has]).any():
            log.warning("btyd: expected orders not finite for %d of %d customers (%s), left NaN",
                        int(np.isnan(n_orders[has]).sum()), len(x), bg)
        gg = _try(lambda: fit_gamma_gamma(x[fit_rows], m[fit_rows], penalizer=config.penalizer,
                                          min_repeat_buyers=config.min_repeat_buyers), "Gamma-Gamma")
        if gg is not None:
            value[has] = n_orders[has] * expected_order_value(gg, x, m)
    put = sink.put
    put("btyd_p_alive", alive, family="btyd", window=None, unit="probability",
        description="probability of still being an active buyer (BG/NBD)",
        sentence="probability of still being an active buyer: {value}")
    put(f"btyd_expected_orders_{h}d", n_orders, family="btyd", window=None, unit="orders",
        description=f"expected orders in the next {h} days (BG/NBD)",
        sentence=f"{{value}} orders expected in the next {h} days")
    put(f"btyd_expected_value_{h}d", value, family="btyd", window=None, unit="currency",
        description=f"expected spend in the next {h} days (BG/NBD orders x Gamma-Gamma order value)",
        sentence=f"expected to spend {{value}} in the next {h} days")


def _fit_rows(n: int, config: BtydConfig) -> np.ndarray:
    """All rows, or a fixed-seed random subsample of ``fit_sample`` of them, sorted."""
    if n <= config.fit_sample:
        return np.arange(n)
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(n, size=config.fit_sample, replace=False))


def _fit_bgnbd_checked(x: np.ndarray, tx: np.ndarray, T: np.ndarray, config: BtydConfig) -> BgNbdParams:
    if len(x) < config.min_customers:
        raise BtydFitError(f"{len(x)} customers with an order: at least {config.min_customers} "
                           "needed to fit BG/NBD")
    return fit_bgnbd(x, tx, T, penalizer=config.penalizer, min_repeat_buyers=config.min_repeat_buyers)


def _try(fit, model: str):
    try:
        return fit()
    except BtydFitError as e:
        log.warning("btyd: %s not fitted, its features are NaN: %s", model, e)
        return None

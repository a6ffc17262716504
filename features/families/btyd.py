"""The buy-till-you-die family: P(alive), expected orders and value from BG/NBD and Gamma-Gamma
(``features.btyd``), fitted on the orders before the cutoff."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from features.btyd import (
    BgNbdParams,
    BtydConfig,
    BtydFitError,
    GammaGammaParams,
    PurchaseSummary,
    expected_order_value,
    expected_orders,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    summarise,
)
from features.events import EventView
from features.families import FeatureSink

log = logging.getLogger(__name__)

__all__ = ["BgNbdParams", "BtydConfig", "BtydFitError", "GammaGammaParams", "PurchaseSummary",
           "BtydFit", "add_btyd", "expected_order_value", "expected_orders", "fit_bgnbd", "fit_gamma_gamma",
           "fit_btyd", "fit_btyd_summary", "p_alive", "summarise"]


@dataclass(frozen=True)
class BtydFit:
    """The fitted models at one cutoff (None where the data could not identify one)."""

    bgnbd: BgNbdParams | None
    gamma_gamma: GammaGammaParams | None

    def as_dict(self) -> dict:
        return {"bgnbd": asdict(self.bgnbd) if self.bgnbd else None,
                "gamma_gamma": asdict(self.gamma_gamma) if self.gamma_gamma else None}

    @classmethod
    def from_dict(cls, d: dict) -> BtydFit:
        return cls(BgNbdParams(**d["bgnbd"]) if d.get("bgnbd") else None,
                   GammaGammaParams(**d["gamma_gamma"]) if d.get("gamma_gamma") else None)


def fit_btyd(orders: EventView, config: BtydConfig) -> BtydFit:
    """BG/NBD and Gamma-Gamma fitted on the customers' orders before the cutoff (a fixed-seed
    sample of ``fit_sample`` customers at most); a model that cannot be fitted is None (logged)."""
    return fit_btyd_summary(summarise(orders), config)


def fit_btyd_summary(s: PurchaseSummary, config: BtydConfig) -> BtydFit:
    """``fit_btyd`` from the customers' purchase summaries (those of every partition of the
    customers, joined in the customers' order, give the whole base's fit)."""
    has = np.isfinite(s.frequency)
    x, tx, T, m = s.frequency[has], s.recency[has], s.age[has], s.monetary[has]
    rows = _fit_rows(len(x), config)
    bg = _try(lambda: _fit_bgnbd_checked(x[rows], tx[rows], T[rows], config), "BG/NBD")
    gg = None if bg is None else _try(
        lambda: fit_gamma_gamma(x[rows], m[rows], penalizer=config.penalizer,
                                min_repeat_buyers=config.min_repeat_buyers), "Gamma-Gamma")
    return BtydFit(bg, gg)


def add_btyd(sink: FeatureSink, orders: EventView, tenure_days: np.ndarray, horizon_days: int,
             config: BtydConfig, fit: BtydFit | None = None) -> None:
    """P(alive), expected orders and expected order value in the next ``horizon_days`` days.

    ``orders`` holds only orders before the cutoff (amounts in column "amount"). ``fit`` is the
    models fitted on every customer (so that a partition of customers gets the numbers the whole
    base gets); without it they are fitted on these customers. The BG/NBD clock starts at the
    first purchase, not at signup, so ``tenure_days`` only fixes the number of customers.
    Customers without an order, and every customer when a model could not be fitted, get NaN.
    """
    if len(tenure_days) != orders.n:
        raise ValueError(f"tenure_days has {len(tenure_days)} customers, orders {orders.n}")
    h = int(horizon_days)
    fit = fit if fit is not None else fit_btyd(orders, config)
    s = summarise(orders)
    alive, n_orders, value = (np.full(orders.n, np.nan) for _ in range(3))
    has = np.isfinite(s.frequency)
    x, tx, T, m = s.frequency[has], s.recency[has], s.age[has], s.monetary[has]
    bg, gg = fit.bgnbd, fit.gamma_gamma
    if bg is not None and len(x):
        alive[has] = p_alive(bg, x, tx, T)
        n_orders[has] = expected_orders(bg, h, x, tx, T)
        if np.isnan(n_orders[has]).any():
            log.warning("btyd: expected orders not finite for %d of %d customers (%s), left NaN",
                        int(np.isnan(n_orders[has]).sum()), len(x), bg)
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

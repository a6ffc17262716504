"""Each customer's purchase history summarised as lifetimes does, in days."""

from __future__ import annotations

import numpy as np

from features.btyd.base import DAY_SNAP, PurchaseSummary
from features.events import DAY_NS, EventView

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



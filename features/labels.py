"""Churn labels and the population they apply to, for both churn definitions.

At cutoff ``t`` with horizon ``h``:

- non-contractual: the population is customers who signed up before ``t``, have not cancelled by
  ``t`` and ordered in ``[t - h, t)`` (active by the same rule that defines churn); the label is 1
  when they place no order in ``(t, t + h]``.
- contractual: the population is contract customers (``has_contract``, when the column exists)
  who signed up before ``t`` and whose ``cancel_date`` is empty or after ``t``; the label is 1 when
  ``cancel_date`` falls in ``(t, t + h]``.

A label is missing (NaN) when the data does not reach ``t + h``: the outcome is not known yet. The
data's end is its declared as-of date, else its latest timestamp (which the contract keeps out of
the future), so no label ever comes from a horizon that has not been observed in full.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import LabelConfig
from features.events import DAY_NS, SortedEvents


def horizon_end(cutoff, config: LabelConfig) -> pd.Timestamp:
    """The end of the label horizon of ``cutoff``: the outcome is known once the data reaches it."""
    return pd.Timestamp(cutoff) + pd.Timedelta(days=config.horizon_days)


def is_observed(cutoff, config: LabelConfig, data_end) -> bool:
    """Whether the whole horizon ``(cutoff, cutoff + horizon]`` lies within the data."""
    return horizon_end(cutoff, config) <= pd.Timestamp(data_end)


def population_rule(config: LabelConfig) -> str:
    """Who is in the population at a cutoff, in words (for messages)."""
    if config.definition == "noncontractual":
        return (f"signed up before the cutoff, have not cancelled by it and ordered in the "
                f"{config.horizon_days} days before it")
    return (f"are contract customers ({config.contract_flag}, when the column exists), signed up "
            "before the cutoff and have not cancelled by it")


def population_and_label(customers: pd.DataFrame, orders: SortedEvents, cutoff: pd.Timestamp,
                         config: LabelConfig, data_end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Return (in_population, label) arrays aligned with ``customers``' rows."""
    t = np.int64(pd.Timestamp(cutoff).value)
    h = np.int64(config.horizon_days) * DAY_NS
    signup = customers["signup_date"].to_numpy("datetime64[ns]").view(np.int64)
    cancel = _times(customers, "cancel_date")
    not_cancelled = (cancel == np.iinfo(np.int64).min) | (cancel > t)
    population = (signup < t) & not_cancelled
    complete = is_observed(cutoff, config, data_end)
    if config.definition == "noncontractual":
        recent = np.bincount(orders.codes[(orders.ts >= t - h) & (orders.ts < t)],
                             minlength=len(customers))
        population &= recent > 0
        future = np.bincount(orders.codes[(orders.ts > t) & (orders.ts <= t + h)],
                             minlength=len(customers))
        label = (future == 0).astype(np.float64)
    else:
        if config.contract_flag in customers.columns:
            population &= customers[config.contract_flag].fillna(False).to_numpy(bool)
        label = ((cancel > t) & (cancel <= t + h)).astype(np.float64)
    if not complete:
        label[:] = np.nan
    return population, label


def _times(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.iinfo(np.int64).min, dtype=np.int64)
    return frame[column].to_numpy("datetime64[ns]").view(np.int64)

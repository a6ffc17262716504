"""Customer value: the expected future margin of keeping a customer.

value = margin x expected spend over the horizon, discounted to today, where expected spend is the
customer's recent order rate (orders in the long window, per day) x horizon x average order value.
Customers with no order history in the window are worth ``min_value``. Assumptions are config.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from features.families.rfm import avg_order_value_feature, orders_feature


class ValueConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    margin: float = Field(0.3, gt=0, le=1, description="gross margin on spend")
    horizon_days: int = Field(365, gt=0, description="how far ahead value is counted")
    annual_discount_rate: float = Field(0.10, ge=0, lt=1)
    window_days: int = Field(365, gt=0, description="the feature window the rate comes from")
    min_value: float = Field(0.0, ge=0)


def customer_value(orders_in_window: np.ndarray, avg_order_value: np.ndarray,
                   config: ValueConfig) -> np.ndarray:
    """Expected discounted margin over the horizon, from an order count and average order value."""
    rate = np.asarray(orders_in_window, dtype=float) / config.window_days
    aov = np.asarray(avg_order_value, dtype=float)
    years = config.horizon_days / 365.0
    # spend spread evenly over the horizon, discounted at mid-horizon
    discount = (1 + config.annual_discount_rate) ** (-years / 2)
    value = config.margin * rate * config.horizon_days * aov * discount
    return np.fmax(value, config.min_value)  # missing or infinite inputs -> the minimum value


def value_features(config: ValueConfig) -> tuple[str, str]:
    """The feature names the value is computed from."""
    return orders_feature(config.window_days), avg_order_value_feature(config.window_days)

"""Recency, frequency, monetary value, inter-purchase time, tenure (from orders and customers)."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import EventView, ratio
from features.families import FeatureSink


def orders_feature(window: int) -> str:
    """The name of the feature counting each customer's orders in the last ``window`` days."""
    return f"orders_{window}d"


def avg_order_value_feature(window: int) -> str:
    """The name of the feature averaging each customer's order amounts over ``window`` days."""
    return f"avg_order_value_{window}d"


def add_rfm(sink: FeatureSink, orders: EventView, tenure_days: np.ndarray,
            config: FeatureConfig) -> None:
    put = sink.put
    put("tenure_days", tenure_days, family="rfm", window=None, unit="days",
        description="days since the customer signed up",
        sentence="customer for {value} days")
    recency = put("recency_days", orders.days_since_last(), family="rfm", window=None,
                  unit="days", description="days since the last order",
                  sentence="no order for {value} days")
    amount = orders.col("amount")
    for w in config.windows:
        put(orders_feature(w), orders.count(w), family="rfm", window=w, unit="orders",
            description=f"orders in the last {w} days",
            sentence=f"{{value}} orders in the last {w} days")
        put(f"spend_{w}d", orders.total(amount, w), family="rfm", window=w, unit="currency",
            description=f"amount spent in the last {w} days",
            sentence=f"spent {{value}} in the last {w} days")
    n_all = put("orders_lifetime", orders.count(), family="rfm", window=None, unit="orders",
                description="orders since signup", sentence="{value} orders in all")
    put("spend_lifetime", orders.total(amount), family="rfm", window=None, unit="currency",
        description="amount spent since signup", sentence="spent {value} in all")
    lw = config.long_window
    put(avg_order_value_feature(lw), orders.mean(amount, lw), family="rfm", window=lw,
        unit="currency", description=f"average order value over the last {lw} days",
        sentence=f"average order of {{value}} over the last {lw} days")
    first = orders.days_since_first()
    gap = ratio(first - np.nan_to_num(recency), n_all - 1)
    put("interpurchase_days", gap, family="rfm", window=None, unit="days",
        description="usual days between two orders",
        sentence="usually orders every {value} days")
    put("overdue_ratio", ratio(np.nan_to_num(recency), gap), family="rfm", window=None,
        unit="ratio", description="days since the last order divided by the usual gap",
        sentence="next order {value} times the usual gap overdue")
    tw = config.trend_window
    put(f"orders_trend_{tw}d", orders.count(tw) - orders.count(tw, start=tw), family="rfm",
        window=tw, unit="orders", description=f"orders in the last {tw} days minus the {tw} before",
        sentence=f"{{value}} orders compared with the previous {tw} days")
    put(f"spend_trend_{tw}d", orders.total(amount, tw) - orders.total(amount, tw, start=tw),
        family="rfm", window=tw, unit="currency",
        description=f"spend in the last {tw} days minus the {tw} before",
        sentence=f"spend changed by {{value}} compared with the previous {tw} days")
    if orders.has("discount"):
        discounted = orders.col("discount") > 0
        put(f"discounted_order_share_{lw}d",
            ratio(orders.count(lw, mask=discounted), orders.count(lw)), family="rfm", window=lw,
            unit="share", description=f"share of orders with a discount over the last {lw} days",
            sentence=f"{{value}} of orders discounted over the last {lw} days")

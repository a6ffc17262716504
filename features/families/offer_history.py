"""Offer history: retention offers received and accepted (hold-out rows were never sent)."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import EventView, ratio
from features.families import FeatureSink


def add_offer_history(sink: FeatureSink, offers: EventView, config: FeatureConfig) -> None:
    lw = config.long_window
    received = offers.where(offers.col("treated") == 1)
    accepted = np.zeros(len(received), dtype=bool)
    if received.has("accepted_ts"):
        acc = received.col("accepted_ts")
        accepted = (acc != np.iinfo(np.int64).min) & (acc < received.cutoff_ns)
    sink.put(f"offers_received_{lw}d", received.count(lw), family="offers", window=lw,
             unit="offers", description=f"retention offers received in the last {lw} days",
             sentence=f"{{value}} retention offers in the last {lw} days")
    sink.put(f"offers_accepted_{lw}d", received.count(lw, mask=accepted), family="offers",
             window=lw, unit="offers", description=f"retention offers accepted, last {lw} days",
             sentence=f"accepted {{value}} retention offers in the last {lw} days")
    sink.put("offer_acceptance_rate", ratio(received.count(mask=accepted), received.count()),
             family="offers", window=None, unit="share",
             description="share of retention offers accepted since signup",
             sentence="accepted {value} of retention offers")
    sink.put("days_since_last_offer", received.days_since_last(), family="offers", window=None,
             unit="days", description="days since the last retention offer",
             sentence="last retention offer {value} days ago")

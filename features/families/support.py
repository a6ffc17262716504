"""Support interactions: volume, complaints, backlog, resolution, reopen/escalation, channels.

Outcome flags (escalated, reopened, resolved at first contact) and resolution times are only known
once a ticket is closed, so they count only for tickets closed before the cutoff.
"""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import DAY_NS, EventView, ratio
from features.families import FeatureSink


def add_support(sink: FeatureSink, tickets: EventView, config: FeatureConfig) -> None:
    put = sink.put
    lw, tw = config.long_window, config.trend_window
    for w in config.windows:
        put(f"tickets_{w}d", tickets.count(w), family="support", window=w, unit="tickets",
            description=f"support tickets opened in the last {w} days",
            sentence=f"{{value}} support tickets in the last {w} days")
    put(f"tickets_trend_{tw}d", tickets.count(tw) - tickets.count(tw, start=tw), family="support",
        window=tw, unit="tickets", description=f"tickets in the last {tw} days minus the {tw} before",
        sentence=f"{{value}} tickets compared with the previous {tw} days")
    put("days_since_last_ticket", tickets.days_since_last(), family="support", window=None,
        unit="days", description="days since the last support ticket",
        sentence="last support ticket {value} days ago")
    if tickets.has("is_complaint"):
        complaint = tickets.col("is_complaint") == 1
        for w in config.windows[-2:]:
            put(f"complaints_{w}d", tickets.count(w, mask=complaint), family="support", window=w,
                unit="complaints", description=f"complaints in the last {w} days",
                sentence=f"{{value}} complaints in the last {w} days")
    if not tickets.has("closed_ts"):
        return
    closed_ts = tickets.col("closed_ts")
    closed = (closed_ts != np.iinfo(np.int64).min) & (closed_ts < tickets.cutoff_ns)
    put("open_tickets", tickets.count(mask=~closed), family="support", window=None,
        unit="tickets", description="tickets still open at the cutoff",
        sentence="{value} support tickets still open")
    hours = np.where(closed, (closed_ts - (tickets.cutoff_ns - tickets.age * DAY_NS)) / 3.6e12,
                     np.nan)
    put(f"resolution_hours_mean_{lw}d", tickets.mean(hours, lw), family="support", window=lw,
        unit="hours", description=f"mean hours to resolve a ticket over the last {lw} days",
        sentence=f"tickets took {{value}} hours on average to resolve over the last {lw} days")
    slow = closed & (hours > config.slow_ticket_hours)
    put(f"slow_tickets_{lw}d", tickets.count(lw, mask=slow), family="support", window=lw,
        unit="tickets",
        description=f"tickets resolved in over {config.slow_ticket_hours:g} hours, last {lw} days",
        sentence=f"{{value}} tickets took over {config.slow_ticket_hours:g} hours to resolve "
                 f"in the last {lw} days")
    n_closed = tickets.count(lw, mask=closed)
    for flag, noun in (("escalated", "escalated"), ("reopened", "reopened")):
        if tickets.has(flag):
            hit = closed & (tickets.col(flag) == 1)
            n = put(f"tickets_{noun}_{lw}d", tickets.count(lw, mask=hit), family="support",
                    window=lw, unit="tickets", description=f"tickets {noun} in the last {lw} days",
                    sentence=f"{{value}} tickets {noun} in the last {lw} days")
            put(f"{noun}_rate_{lw}d", ratio(n, n_closed), family="support", window=lw,
                unit="share", description=f"share of closed tickets {noun}, last {lw} days",
                sentence=f"{{value}} of closed tickets {noun} in the last {lw} days")
    if tickets.has("resolved_first_contact"):
        fcr = closed & (tickets.col("resolved_first_contact") == 1)
        put(f"first_contact_resolution_rate_{lw}d", ratio(tickets.count(lw, mask=fcr), n_closed),
            family="support", window=lw, unit="share",
            description=f"share of closed tickets solved at first contact, last {lw} days",
            sentence=f"{{value}} of tickets solved at first contact in the last {lw} days")
    if tickets.has("channel"):
        channel = tickets.col("channel")
        all_w = tickets.count(lw)
        for ch in config.ticket_channels:
            put(f"tickets_{ch}_share_{lw}d", ratio(tickets.count(lw, mask=channel == ch), all_w),
                family="support", window=lw, unit="share",
                description=f"share of tickets opened by {ch}, last {lw} days",
                sentence=f"{{value}} of tickets by {ch} in the last {lw} days")

"""Engagement: e-mail, web and app activity, reviews, loyalty points, referrals, proactiveness."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import EventView, ratio
from features.families import FeatureSink

CUSTOMER_STARTED = ("email_open", "email_click", "web_session", "app_login", "review",
                    "loyalty_redeem", "referral")
COMPANY_STARTED = ("email_sent",)


def add_engagement(sink: FeatureSink, events: EventView, config: FeatureConfig) -> None:
    put = sink.put
    kind = events.col("event_type")
    value = events.col("value") if events.has("value") else np.full(len(events), np.nan)
    is_ = {t: kind == t for t in set(CUSTOMER_STARTED + COMPANY_STARTED + ("loyalty_earn",))}
    short, mid, lw, tw = config.windows[0], config.windows[len(config.windows) // 2], \
        config.long_window, config.trend_window
    for w in sorted({mid, lw}):
        sent = put(f"emails_sent_{w}d", events.count(w, mask=is_["email_sent"]),
                   family="engagement", window=w, unit="e-mails",
                   description=f"marketing e-mails sent in the last {w} days",
                   sentence=f"{{value}} e-mails sent in the last {w} days")
        put(f"email_open_rate_{w}d", _rate(events.count(w, mask=is_["email_open"]), sent),
            family="engagement", window=w, unit="share",
            description=f"e-mails opened per e-mail sent, last {w} days",
            sentence=f"opened {{value}} of e-mails in the last {w} days")
        put(f"email_click_rate_{w}d", _rate(events.count(w, mask=is_["email_click"]), sent),
            family="engagement", window=w, unit="share",
            description=f"e-mail clicks per e-mail sent, last {w} days",
            sentence=f"clicked {{value}} of e-mails in the last {w} days")
    for w in sorted({short, mid, lw}):
        put(f"web_sessions_{w}d", events.count(w, mask=is_["web_session"]), family="engagement",
            window=w, unit="sessions", description=f"web sessions in the last {w} days",
            sentence=f"{{value}} web sessions in the last {w} days")
        put(f"app_logins_{w}d", events.count(w, mask=is_["app_login"]), family="engagement",
            window=w, unit="logins", description=f"app logins in the last {w} days",
            sentence=f"{{value}} app logins in the last {w} days")
    put(f"pages_per_session_{mid}d", events.mean(value, mid, mask=is_["web_session"]),
        family="engagement", window=mid, unit="pages",
        description=f"pages viewed per web session, last {mid} days",
        sentence=f"{{value}} pages per web session in the last {mid} days")
    usage = kind == "active_days"  # a monthly usage summary: value = days active that month
    for w in sorted({short, mid, lw}):
        put(f"active_days_{w}d", events.mean(value, w, mask=usage), family="engagement",
            window=w, unit="days a month",
            description=f"days active per month (monthly usage summaries), last {w} days",
            sentence=f"active on {{value}} days a month over the last {w} days")
    visits = is_["web_session"] | is_["app_login"]
    put(f"visits_trend_{tw}d",
        events.count(tw, mask=visits) - events.count(tw, mask=visits, start=tw),
        family="engagement", window=tw, unit="visits",
        description=f"web sessions and app logins in the last {tw} days minus the {tw} before",
        sentence=f"{{value}} visits compared with the previous {tw} days")
    put(f"reviews_{lw}d", events.count(lw, mask=is_["review"]), family="engagement", window=lw,
        unit="reviews", description=f"reviews written in the last {lw} days",
        sentence=f"{{value}} reviews in the last {lw} days")
    put(f"review_rating_mean_{lw}d", events.mean(value, lw, mask=is_["review"]),
        family="engagement", window=lw, unit="stars",
        description=f"average review rating, last {lw} days",
        sentence=f"reviews averaged {{value}} stars in the last {lw} days")
    earned = events.total(value, lw, mask=is_["loyalty_earn"])
    redeemed = events.total(value, lw, mask=is_["loyalty_redeem"])
    put(f"loyalty_points_earned_{lw}d", earned, family="engagement", window=lw, unit="points",
        description=f"loyalty points earned in the last {lw} days",
        sentence=f"earned {{value}} loyalty points in the last {lw} days")
    put(f"loyalty_points_redeemed_{lw}d", redeemed, family="engagement", window=lw,
        unit="points", description=f"loyalty points redeemed in the last {lw} days",
        sentence=f"redeemed {{value}} loyalty points in the last {lw} days")
    put("loyalty_points_balance",
        events.total(value, mask=is_["loyalty_earn"]) - events.total(value, mask=is_["loyalty_redeem"]),
        family="engagement", window=None, unit="points",
        description="loyalty points earned minus redeemed since signup",
        sentence="{value} loyalty points unspent")
    put(f"referrals_{lw}d", events.count(lw, mask=is_["referral"]), family="engagement",
        window=lw, unit="referrals", description=f"friends referred in the last {lw} days",
        sentence=f"referred {{value}} friends in the last {lw} days")
    started = np.zeros(len(events), dtype=bool)
    for t in CUSTOMER_STARTED:
        started |= is_[t]
    put("days_since_last_activity", events.where(started).days_since_last(), family="engagement",
        window=None, unit="days",
        description="days since the customer last opened, clicked, visited or logged in",
        sentence="no activity for {value} days")


def _rate(reactions: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """Reactions per e-mail, capped at 1 (an open can fall in the window, its e-mail before)."""
    return np.minimum(ratio(reactions, sent), 1.0)


def add_proactiveness(sink: FeatureSink, n: int, events: EventView | None,
                      tickets: EventView | None, offers: EventView | None,
                      config: FeatureConfig) -> None:
    """Share of contacts in the mid window that the customer started (visits, tickets, ...)."""
    w = config.windows[len(config.windows) // 2]
    theirs = np.zeros(n)
    ours = np.zeros_like(theirs)
    if events is not None:
        kind = events.col("event_type")
        theirs += events.count(w, mask=kind.isin(CUSTOMER_STARTED))
        ours += events.count(w, mask=kind.isin(COMPANY_STARTED))
    if tickets is not None:
        theirs += tickets.count(w)
    if offers is not None:
        ours += offers.count(w, mask=offers.col("treated") == 1)
    sink.put(f"proactiveness_{w}d", ratio(theirs, theirs + ours), family="engagement", window=w,
             unit="share", description=f"share of contacts the customer started, last {w} days",
             sentence=f"started {{value}} of contacts in the last {w} days")


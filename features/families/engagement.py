"""Engagement: e-mail, web and app activity, reviews, loyalty points, referrals, proactiveness."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import Coded, EventView, ratio
from features.families import FeatureSink

CUSTOMER_STARTED = ("email_open", "email_click", "web_session", "app_login", "review",
                    "loyalty_redeem", "referral")
COMPANY_STARTED = ("email_sent",)
# the types whose events the family counts (others only in the activity family)
ENGAGEMENT_TYPES = (*CUSTOMER_STARTED, *COMPANY_STARTED, "loyalty_earn", "active_days")


def add_engagement(sink: FeatureSink, events: EventView, config: FeatureConfig) -> None:
    put = sink.put
    by = _ByType(events, ENGAGEMENT_TYPES)
    short, mid, lw, tw = config.windows[0], config.windows[len(config.windows) // 2], \
        config.long_window, config.trend_window
    for w in sorted({mid, lw}):
        sent = put(f"emails_sent_{w}d", by.count(w, "email_sent"),
                   family="engagement", window=w, unit="e-mails",
                   description=f"marketing e-mails sent in the last {w} days",
                   sentence=f"{{value}} e-mails sent in the last {w} days")
        put(f"email_open_rate_{w}d", _rate(by.count(w, "email_open"), sent),
            family="engagement", window=w, unit="share",
            description=f"e-mails opened per e-mail sent, last {w} days",
            sentence=f"opened {{value}} of e-mails in the last {w} days")
        put(f"email_click_rate_{w}d", _rate(by.count(w, "email_click"), sent),
            family="engagement", window=w, unit="share",
            description=f"e-mail clicks per e-mail sent, last {w} days",
            sentence=f"clicked {{value}} of e-mails in the last {w} days")
    for w in sorted({short, mid, lw}):
        put(f"web_sessions_{w}d", by.count(w, "web_session"), family="engagement",
            window=w, unit="sessions", description=f"web sessions in the last {w} days",
            sentence=f"{{value}} web sessions in the last {w} days")
        put(f"app_logins_{w}d", by.count(w, "app_login"), family="engagement",
            window=w, unit="logins", description=f"app logins in the last {w} days",
            sentence=f"{{value}} app logins in the last {w} days")
    put(f"pages_per_session_{mid}d", by.mean(mid, "web_session"),
        family="engagement", window=mid, unit="pages",
        description=f"pages viewed per web session, last {mid} days",
        sentence=f"{{value}} pages per web session in the last {mid} days")
    for w in sorted({short, mid, lw}):  # a monthly usage summary: value = days active that month
        put(f"active_days_{w}d", by.mean(w, "active_days"), family="engagement",
            window=w, unit="days a month",
            description=f"days active per month (monthly usage summaries), last {w} days",
            sentence=f"active on {{value}} days a month over the last {w} days")
    visits = ("web_session", "app_login")
    put(f"visits_trend_{tw}d", by.count(tw, *visits) - by.count(tw, *visits, start=tw),
        family="engagement", window=tw, unit="visits",
        description=f"web sessions and app logins in the last {tw} days minus the {tw} before",
        sentence=f"{{value}} visits compared with the previous {tw} days")
    put(f"reviews_{lw}d", by.count(lw, "review"), family="engagement", window=lw,
        unit="reviews", description=f"reviews written in the last {lw} days",
        sentence=f"{{value}} reviews in the last {lw} days")
    put(f"review_rating_mean_{lw}d", by.mean(lw, "review"),
        family="engagement", window=lw, unit="stars",
        description=f"average review rating, last {lw} days",
        sentence=f"reviews averaged {{value}} stars in the last {lw} days")
    earned = by.total(lw, "loyalty_earn")
    redeemed = by.total(lw, "loyalty_redeem")
    put(f"loyalty_points_earned_{lw}d", earned, family="engagement", window=lw, unit="points",
        description=f"loyalty points earned in the last {lw} days",
        sentence=f"earned {{value}} loyalty points in the last {lw} days")
    put(f"loyalty_points_redeemed_{lw}d", redeemed, family="engagement", window=lw,
        unit="points", description=f"loyalty points redeemed in the last {lw} days",
        sentence=f"redeemed {{value}} loyalty points in the last {lw} days")
    put("loyalty_points_balance",
        by.total(None, "loyalty_earn") - by.total(None, "loyalty_redeem"),
        family="engagement", window=None, unit="points",
        description="loyalty points earned minus redeemed since signup",
        sentence="{value} loyalty points unspent")
    put(f"referrals_{lw}d", by.count(lw, "referral"), family="engagement",
        window=lw, unit="referrals", description=f"friends referred in the last {lw} days",
        sentence=f"referred {{value}} friends in the last {lw} days")
    started = by.of(*CUSTOMER_STARTED)
    put("days_since_last_activity", events.where(started).days_since_last(), family="engagement",
        window=None, unit="days",
        description="days since the customer last opened, clicked, visited or logged in",
        sentence="no activity for {value} days")


class _ByType:
    """Tallies per customer and event type (of ``types``) in a window: one pass over the events
    per window for every type at once (a pass per type and window cost a sixth of the build), the
    same numbers as masking each type (each customer's events summed in the same order).

    ``count`` counts events; ``total`` sums their non-missing ``value``s; ``mean`` is one over
    the events with a value (NaN without)."""

    def __init__(self, events: EventView, types: tuple[str, ...]):
        self.events, self.types = events, types
        kind = events.col("event_type")
        if not isinstance(kind, Coded):  # not text (numbers): no event is of a named type
            kind = Coded(np.full(len(events), -1, dtype=np.int32), [])
        slot_of = {t: i for i, t in enumerate(types)}
        table = np.array([slot_of.get(c, len(types)) for c in kind.categories] + [len(types)],
                         dtype=np.int64)
        self.slot = table[kind.codes]  # len(types): a type not named (or missing)
        self.value = events.col("value") if events.has("value") else None
        self._cells = events.codes * (len(types) + 1) + self.slot
        self._tallies: dict[tuple, np.ndarray] = {}

    def of(self, *types: str) -> np.ndarray:
        """Which events are of one of ``types``."""
        wanted = np.zeros(len(self.types) + 1, dtype=bool)
        wanted[[self.types.index(t) for t in types]] = True
        return wanted[self.slot]

    def count(self, window: float | None, *types: str, start: float = 0.0) -> np.ndarray:
        return self._sum_of(self._tally("count", window, start), types)

    def total(self, window: float | None, *types: str) -> np.ndarray:
        return self._sum_of(self._tally("total", window), types)

    def mean(self, window: float | None, *types: str) -> np.ndarray:
        return ratio(self._sum_of(self._tally("total", window), types),
                     self._sum_of(self._tally("valued", window), types))

    def _sum_of(self, tally: np.ndarray, types: tuple[str, ...]) -> np.ndarray:
        cols = [self.types.index(t) for t in types]
        out = tally[:, cols[0]].copy()
        for j in cols[1:]:  # whole numbers of events: the sum is exact
            out += tally[:, j]
        return out

    def _tally(self, what: str, window: float | None, start: float = 0.0) -> np.ndarray:
        key = (what, window, start)
        if key not in self._tallies:
            m = self.events.window_mask(window, start)
            weights = None
            if what != "count":
                value = (np.full(len(self.events), np.nan) if self.value is None
                         else self.value)
                has = ~np.isnan(value)
                weights = np.where(has, value, 0.0) if what == "total" else has.astype(np.float64)
                weights = weights if m is None else weights[m]
            cells = self._cells if m is None else self._cells[m]
            k = len(self.types) + 1
            tally = np.bincount(cells, weights=weights, minlength=self.events.n * k)
            self._tallies[key] = tally.astype(np.float64, copy=False).reshape(-1, k)
        return self._tallies[key]


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


"""Activity: features for every engagement event type found in the data, whatever its name.

A product's own usage log (posts, likes, ad views, messages, ...) carries the signal that the named
engagement features cannot see. Each type in the vocabulary gets counts over every window, the
change between the last trend window and the one before, days since it was last seen and its share
of all activity; types whose events carry a ``value`` also get value sums. Across types: events and
distinct active days per window, distinct types used, days since any event. Rare types are grouped
as "other types".

The vocabulary is fixed once per feature set (``FeatureConfig.event_types``, recorded with the
model) so that every cutoff and every scoring run has the same columns; when it is not given it is
found from the events before the cutoff only.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from features.config import FeatureConfig
from features.events import Coded, EventView, ratio
from features.families import FeatureSink

log = logging.getLogger(__name__)

FAMILY = "activity"
OTHER = "other types"


def choose_vocabulary(events: EventView, config: FeatureConfig) -> tuple[tuple[str, ...],
                                                                         tuple[str, ...]]:
    """The event types that get features of their own (the most frequent, up to
    ``max_event_types``, each at least ``min_event_share`` of the events) and, among them, those
    whose events carry values."""
    return vocabulary_from_counts(event_type_counts(events), config)


def event_type_counts(events: EventView) -> dict[str, tuple[int, int]]:
    """Events of each type, and how many of them carry a value (summed over partitions of the
    customers, they give the whole base's vocabulary)."""
    codes, names = _codes(events.col("event_type"))
    counts = np.bincount(codes, minlength=len(names))
    with_value = (np.bincount(codes[~np.isnan(events.col("value"))], minlength=len(names))
                  if events.has("value") else np.zeros(len(names), dtype=np.int64))
    return {n: (int(c), int(v)) for n, c, v in zip(names, counts, with_value, strict=True)}


def vocabulary_from_counts(found: dict[str, tuple[int, int]], config: FeatureConfig
                           ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``choose_vocabulary`` from the counts of ``event_type_counts``."""
    names = sorted(found)
    counts = np.array([found[n][0] for n in names], dtype=np.int64)
    total = max(int(counts.sum()), 1)
    order = np.argsort(-counts, kind="stable")
    chosen = [names[i] for i in order[: config.max_event_types]
              if counts[i] > 0 and counts[i] / total >= config.min_event_share]
    chosen = sorted(chosen)
    valued = [t for t in chosen if found[t][1] > 0]
    grouped = len(names) - len(chosen)
    if grouped:
        log.info("event types: %d with features of their own, %d rare ones grouped as %r",
                 len(chosen), grouped, OTHER)
    return tuple(chosen), tuple(valued)


def add_activity(sink: FeatureSink, events: EventView, config: FeatureConfig) -> None:
    """Per event type and across types, from events strictly before the cutoff."""
    vocabulary, valued = ((config.event_types, config.valued_event_types or ())
                          if config.event_types is not None else choose_vocabulary(events, config))
    slot = _slots(events.col("event_type"), vocabulary)  # 0..K-1 known, K other
    labels = [*vocabulary, OTHER]  # "other types" always has its columns: a stable column set
    k = len(labels)
    names = _feature_names(labels)
    lw, tw = config.long_window, config.trend_window
    value = events.col("value") if events.has("value") else None

    def per_type(window: float | None, start: float = 0.0,
                 weights: tuple[np.ndarray, ...] = ()) -> list[np.ndarray]:
        """customers x types in the window: event counts, then the sums of each of ``weights``
        (the window's events found once for all of them)."""
        m = events.window_mask(window, start)
        cells = cell if m is None else cell[m]
        out = [np.bincount(cells, minlength=events.n * k).reshape(events.n, k)]
        for weight in weights:
            w = np.nan_to_num(weight if m is None else weight[m])
            out.append(np.bincount(cells, weights=w, minlength=events.n * k).reshape(events.n, k))
        return out

    cell = events.codes * k + slot  # each event's (customer, type) cell

    with_values = value is not None and bool(valued)
    weights = (value, (~np.isnan(value)).astype(np.float64)) if with_values else ()
    counts, sums, valued_counts = {}, {}, {}
    for w in config.windows:  # one window's events at a time
        counts[w], *by_value = per_type(w, weights=weights)
        if by_value:
            sums[w], valued_counts[w] = by_value
    before = per_type(tw, start=tw)[0]
    recent = counts[tw] if tw in counts else per_type(tw)[0]
    last_seen = _days_since_last(events, slot, k)
    all_types_lw = counts[lw].sum(axis=1)
    for j in range(k):
        label, name = labels[j], names[j]
        for w in config.windows:
            sink.put(f"{name}_events_{w}d", counts[w][:, j], family=FAMILY, window=w,
                     unit="events", description=f"{label} events in the last {w} days",
                     sentence=f"{{value}} {label} events in the last {w} days")
        sink.put(f"{name}_trend_{tw}d", recent[:, j] - before[:, j], family=FAMILY, window=tw,
                 unit="events",
                 description=f"{label} events in the last {tw} days minus the {tw} before",
                 sentence=f"{{value}} {label} events compared with the previous {tw} days")
        sink.put(f"days_since_{name}", last_seen[:, j], family=FAMILY, window=None, unit="days",
                 description=f"days since the last {label} event",
                 sentence=f"no {label} event for {{value}} days")
        sink.put(f"{name}_share_{lw}d", ratio(counts[lw][:, j], all_types_lw),
                 family=FAMILY, window=lw, unit="share",
                 description=f"share of all events that were {label}, last {lw} days",
                 sentence=f"{{value}} of activity was {label} in the last {lw} days")
    if with_values:
        for t in valued:
            j = labels.index(t)
            for w in config.windows:
                sink.put(f"{names[j]}_value_mean_{w}d",
                         ratio(sums[w][:, j], valued_counts[w][:, j]), family=FAMILY, window=w,
                         unit="value", description=f"average value of {t} events, last {w} days",
                         sentence=f"{t} events averaged {{value}} in the last {w} days")
            sink.put(f"{names[j]}_value_{lw}d", sums[lw][:, j], family=FAMILY, window=lw,
                     unit="value", description=f"sum of the values of {t} events, last {lw} days",
                     sentence=f"{t} events added up to {{value}} in the last {lw} days")
    for w in config.windows:
        sink.put(f"events_{w}d", counts[w].sum(axis=1), family=FAMILY, window=w, unit="events",
                 description=f"events of any type in the last {w} days",
                 sentence=f"{{value}} events of any type in the last {w} days")
        sink.put(f"active_days_any_{w}d", _distinct_days(events, w), family=FAMILY, window=w,
                 unit="days", description=f"days with at least one event, last {w} days",
                 sentence=f"active on {{value}} days in the last {w} days")
    sink.put(f"event_types_used_{lw}d", (counts[lw] > 0).sum(axis=1).astype(np.float64),
             family=FAMILY, window=lw, unit="types",
             description=f"distinct event types in the last {lw} days",
             sentence=f"used {{value}} kinds of activity in the last {lw} days")
    sink.put("days_since_any_event", events.days_since_last(), family=FAMILY, window=None,
             unit="days", description="days since the last event of any type",
             sentence="no event of any type for {value} days")


def _codes(kind) -> tuple[np.ndarray, list[str]]:
    if isinstance(kind, Coded):
        return kind.codes.astype(np.int64), kind.categories
    values = np.asarray(kind).astype(str)
    names, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


def _slots(kind, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Each event's slot: its type's position in the vocabulary, or len(vocabulary) (other)."""
    codes, names = _codes(kind)
    position = {t: i for i, t in enumerate(vocabulary)}
    table = np.array([position.get(n, len(vocabulary)) for n in names] or [len(vocabulary)],
                     dtype=np.int64)
    return table[codes] if len(codes) else codes


def _feature_names(labels: list[str]) -> list[str]:
    """Column-safe, unique names: lower case, runs of other characters as one underscore."""
    out: list[str] = []
    for label in labels:
        base = re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "type"
        name, i = base, 2
        while name in out:
            name, i = f"{base}_{i}", i + 1
        out.append(name)
    return out


def _days_since_last(events: EventView, slot: np.ndarray, k: int) -> np.ndarray:
    """customers x types: days since each type's latest event (NaN if never)."""
    out = np.full(events.n * k, np.nan)
    if len(slot):
        # events are sorted by (customer, time): within a (customer, type) the last event is the
        # latest, and numpy assigns repeated indices in order, so the smallest age wins
        out[events.codes * k + slot] = events.age
    return out.reshape(events.n, k)


def _distinct_days(events: EventView, window: float) -> np.ndarray:
    """Days with at least one event per customer. Events are sorted by (customer, time), so a new
    day starts wherever the customer or the day number changes."""
    m = events.age <= window
    codes = events.codes[m]
    day = np.floor(events.age[m]).astype(np.int64)
    if not len(codes):
        return np.zeros(events.n)
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])
    return np.bincount(codes[new], minlength=events.n).astype(np.float64)

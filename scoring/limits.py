"""What a model accepts: each feature's allowed values, one check for batch (both engines) and the API.

A value is refused when it lies outside its feature's allowed range, when a boolean stands for a
count, a share, an amount or a duration, and a row is refused when every feature is empty (the
model would score a customer it knows nothing about). The ranges are part of the model's feature
specification (``FeatureSpec.low`` / ``high``), recorded when a freshly trained model is saved:
the unit's rule (counts, days and amounts >= 0; shares in [0, 1]) and the training range widened
by ``MARGIN`` times its scale on each side, never narrower than the training range itself. In the
artifact they live in the model's meta (``meta["limits"]["ranges"]``), so the specs keep the shape
older code reads; a model saved before the limits existed loads as it is, and only the unit's
rule applies to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from features.spec import CATEGORY, FeatureSpec

MARGIN = 1000.0  # the training range is widened by 1000 times its scale on each side: "far beyond"
ALL_EMPTY = "every feature is empty"
LIMITS_META = "limits"  # the model meta key saying whether (and how) limits were recorded


def training_ranges(booster) -> dict[str, tuple[float, float]]:
    """Each numeric feature's (min, max) over the rows the booster was trained on, as LightGBM
    records them (``feature_infos`` in the model text); features that were always empty and
    categorical features are left out."""
    names = booster.feature_name()
    infos: list[str] = []
    for line in booster.model_to_string(num_iteration=1).splitlines():
        if line.startswith("feature_infos="):
            infos = line.split("=", 1)[1].split(" ")
            break
    out = {}
    for name, info in zip(names, infos, strict=False):
        if info.startswith("[") and info.endswith("]"):
            low, high = info[1:-1].split(":")
            out[name] = (float(low), float(high))
    return out


def with_limits(specs: list[FeatureSpec], ranges: dict[str, tuple[float, float]],
                margin: float = MARGIN) -> list[FeatureSpec]:
    """The specs with their allowed ranges recorded: the training range widened by ``margin``
    times its scale, cut to what the unit allows (but never inside the training range)."""
    out = []
    for spec in specs:
        seen = ranges.get(spec.name)
        if spec.kind == CATEGORY or seen is None or (spec.low, spec.high) != (None, None):
            out.append(spec)
            continue
        lo, hi = seen
        scale = max(hi - lo, abs(lo), abs(hi), 1.0)
        low, high = lo - margin * scale, hi + margin * scale
        unit_low, unit_high = spec.unit_range()
        if unit_low is not None:
            low = max(low, min(unit_low, lo))
        if unit_high is not None:
            high = min(high, max(unit_high, hi))
        out.append(replace(spec, low=float(low), high=float(high)))
    return out


def record(specs: list[FeatureSpec], meta: dict, booster) -> tuple[list[dict], dict]:
    """The specs and meta as a model artifact stores them: a freshly trained model (no limits
    key in its meta yet) gets its limits recorded from its booster's training range."""
    meta = dict(meta)
    if LIMITS_META not in meta:
        specs = with_limits(specs, training_ranges(booster))
        meta[LIMITS_META] = {"recorded": True, "margin": MARGIN,
                             "source": "unit rules and the training range"}
    if meta[LIMITS_META].get("recorded"):
        meta[LIMITS_META] = {**meta[LIMITS_META], "ranges": {
            s.name: [s.low, s.high] for s in specs if (s.low, s.high) != (None, None)}}
    fields = [{k: v for k, v in asdict(s).items() if k not in ("low", "high")} for s in specs]
    return fields, meta


def restore(fields: list[dict], meta: dict) -> list[FeatureSpec]:
    """The specs of a stored model with their recorded limits (none for older models, whose
    meta is marked so that saving them again, as the Spark engine does, invents none)."""
    limits = meta.setdefault(LIMITS_META, {"recorded": False})
    ranges = limits.get("ranges", {})
    specs = []
    for d in fields:
        low, high = ranges.get(d["name"], (d.get("low"), d.get("high")))
        specs.append(FeatureSpec(**{k: v for k, v in d.items() if k not in ("low", "high")},
                                 low=low, high=high))
    return specs


def _num(v: float) -> str:
    return f"{v:.6g}"


@dataclass(frozen=True)
class Limits:
    """The allowed values of a model's features, in its column order."""

    names: tuple[str, ...]
    low: np.ndarray  # -inf where there is no minimum
    high: np.ndarray  # +inf where there is no maximum
    no_booleans: tuple[str, ...]  # numeric features a boolean may not stand for

    @classmethod
    def of(cls, features: list[str], kinds: list[str], specs: list[FeatureSpec]) -> Limits:
        by_name = {s.name: s for s in specs}
        low = np.full(len(features), -np.inf)
        high = np.full(len(features), np.inf)
        no_bool = []
        for j, (name, kind) in enumerate(zip(features, kinds, strict=True)):
            spec = by_name.get(name)
            if spec is None or kind == CATEGORY:
                continue
            lo, hi = spec.allowed_range()
            low[j] = -np.inf if lo is None else lo
            high[j] = np.inf if hi is None else hi
            if not spec.accepts_booleans:
                no_bool.append(name)
        return cls(tuple(features), low, high, tuple(no_bool))

    @cached_property
    def _no_booleans(self) -> frozenset[str]:  # looked up once per value sent
        return frozenset(self.no_booleans)

    # --- the check ---------------------------------------------------------------------------
    def _why(self, j: int, value: float, detail: bool) -> str:
        name, below = self.names[j], value < self.low[j]
        bound = _num(self.low[j] if below else self.high[j])
        side = "minimum" if below else "maximum"
        if detail:
            return f"{name} = {_num(value)} is {'below' if below else 'above'} the allowed {side} {bound}"
        return f"{name} {'below' if below else 'above'} the allowed {side} {bound}"

    def reasons(self, x: np.ndarray, detail: bool = False) -> np.ndarray:
        """Per row of the encoded matrix ``x``, why it breaks the limits ("" when it does not):
        every feature empty, or the first value outside its range. ``detail`` puts the value in
        the reason (for one customer's answer; batch reasons stay few, to be counted)."""
        why = np.full(len(x), "", dtype=object)
        empty = np.isnan(x).all(axis=1)
        why[empty] = ALL_EMPTY
        with np.errstate(invalid="ignore"):
            outside = (x < self.low) | (x > self.high)
        for i in np.flatnonzero(outside.any(axis=1) & ~empty):
            j = int(np.argmax(outside[i]))
            why[i] = self._why(j, float(x[i, j]), detail)
        return why

    def boolean_reasons(self, frame: pd.DataFrame) -> np.ndarray:
        """Per row of a feature table, a boolean where a count, share or amount belongs."""
        why = np.full(len(frame), "", dtype=object)
        for name in self.no_booleans:
            if name not in frame.columns:
                continue
            values = frame[name]
            if pd.api.types.is_bool_dtype(values):
                mask = values.notna().to_numpy()
            elif values.dtype == object:
                mask = values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
            else:
                continue
            why[mask & (why == "")] = f"{name} is a boolean, not a number"
        return why

    def item_problems(self, features: dict[str, Any], x: np.ndarray) -> list[str]:
        """One customer's problems (the API's per-item error): booleans where numbers belong,
        then the range check of its encoded vector ``x``."""
        no_booleans = self._no_booleans
        problems = [f"feature {name!r} must be a number, got {value!r}"
                    for name, value in features.items()
                    if value.__class__ is bool and name in no_booleans]
        if problems:
            return problems
        why = self.row_reason(x)
        return [why] if why else []

    def row_reason(self, x: np.ndarray) -> str:
        """``reasons`` of one encoded vector, with the value (``detail``), without the arrays of
        a block: "" when the vector is within the limits."""
        if np.isnan(x).all():
            return ALL_EMPTY
        with np.errstate(invalid="ignore"):
            outside = (x < self.low) | (x > self.high)
        if not outside.any():
            return ""
        j = int(np.argmax(outside))
        return self._why(j, float(x[j]), True)

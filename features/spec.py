"""Feature metadata: what each feature means, in words a CRM user understands."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

NUMBER, CATEGORY = "number", "category"  # a feature's kind: a flag is a number with unit "flag"

# What a unit allows, whatever the data: counts, durations and amounts are never negative, shares
# and probabilities lie in [0, 1]. A difference (a trend, a change) may have either sign.
_NON_NEGATIVE = frozenset({
    "events", "orders", "tickets", "complaints", "e-mails", "logins", "sessions", "offers",
    "referrals", "reviews", "surveys", "visits", "types", "pages", "days", "hours",
    "days a month", "currency", "stars", "ratio"})
_UNIT_INTERVAL = frozenset({"share", "probability", "flag"})
_YES_NO = frozenset({"flag", ""})  # units whose values may come as booleans (flags, attributes)


def kind_of(values: pd.Series) -> str:
    """A column's kind: booleans and numbers are numbers, anything else is a category."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return NUMBER
    return CATEGORY


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. ``sentence`` is a template with ``{value}``, read by the reasons code."""

    name: str
    family: str
    window: int | None
    description: str
    unit: str
    sentence: str
    kind: str = NUMBER  # NUMBER | CATEGORY
    # the values a model accepts, recorded with it (the unit's rule and the training range with a
    # margin, see scoring.limits); None: not recorded (older models), only the unit's rule holds
    low: float | None = None
    high: float | None = None

    @property
    def is_difference(self) -> bool:
        return "_trend_" in self.name or self.name.endswith("_change")

    def unit_range(self) -> tuple[float | None, float | None]:
        """What the unit allows (None: no bound): counts, days, amounts >= 0, shares in [0, 1]."""
        if self.kind == CATEGORY or self.is_difference:
            return None, None
        if self.unit in _UNIT_INTERVAL:
            return 0.0, 1.0
        if self.unit in _NON_NEGATIVE:
            return 0.0, None
        return None, None

    def allowed_range(self) -> tuple[float | None, float | None]:
        """The recorded range when there is one, else the unit's rule."""
        unit_low, unit_high = self.unit_range()
        return (unit_low if self.low is None else self.low,
                unit_high if self.high is None else self.high)

    @property
    def accepts_booleans(self) -> bool:
        """A flag or a plain attribute may come as true/false; a count, a share or an amount not."""
        return self.kind != CATEGORY and self.unit in _YES_NO

    def say(self, value) -> str:
        """The feature's value as a sentence, e.g. '3 complaints in the last 90 days'."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return f"{self.description}: unknown"
        if self.kind == CATEGORY:
            return self.sentence.format(value=value)
        number = float(value)
        if self.unit == "flag":
            return self.sentence.format(value="yes" if number >= 0.5 else "no")
        text = f"{number:.0f}" if abs(number - round(number)) < 1e-9 or abs(number) >= 100 \
            else f"{number:.2f}" if abs(number) < 1 else f"{number:.1f}"
        return self.sentence.format(value=text)


def column_spec(name: str, kind: str, family: str, description: str) -> FeatureSpec:
    """The spec of a plain column (a customer attribute, a table path column)."""
    sentence = f"{name} is {{value}}" if kind == CATEGORY else f"{name} = {{value}}"
    return FeatureSpec(name, family, None, description, "", sentence, kind)


def specs_to_json(specs: list[FeatureSpec]) -> str:
    return json.dumps([asdict(s) for s in specs])


def specs_from_json(text: str) -> list[FeatureSpec]:
    return [FeatureSpec(**d) for d in json.loads(text)]


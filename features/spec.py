"""Feature metadata: what each feature means, in words a CRM user understands."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

NUMBER, CATEGORY = "number", "category"  # a feature's kind: a flag is a number with unit "flag"


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


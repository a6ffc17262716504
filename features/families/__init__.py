"""Feature families. Each ``add_*`` function reads an EventView and puts named features in a sink."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.spec import FeatureSpec


@dataclass
class FeatureSink:
    """Collects feature columns with their metadata, in a stable order."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    specs: list[FeatureSpec] = field(default_factory=list)

    def put(self, name: str, values: np.ndarray, *, family: str, window: int | None,
            description: str, unit: str, sentence: str, kind: str = "number") -> np.ndarray:
        if name in self.values:
            raise ValueError(f"feature {name} defined twice")
        self.values[name] = values
        self.specs.append(FeatureSpec(name, family, window, description, unit, sentence, kind))
        return values

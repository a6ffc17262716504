"""Feature families. Each ``add_*`` function reads an EventView and puts named features in a sink."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.spec import NUMBER, FeatureSpec


@dataclass
class FeatureSink:
    """Collects feature columns with their metadata, in a stable order."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    specs: list[FeatureSpec] = field(default_factory=list)

    def put(self, name: str, values: np.ndarray, *, family: str, window: int | None,
            description: str, unit: str, sentence: str, kind: str = NUMBER) -> np.ndarray:
        return self.add(FeatureSpec(name, family, window, description, unit, sentence, kind), values)

    def add(self, spec: FeatureSpec, values: np.ndarray) -> np.ndarray:
        if spec.name in self.values:
            raise ValueError(f"feature {spec.name} defined twice")
        self.values[spec.name] = values
        self.specs.append(spec)
        return values

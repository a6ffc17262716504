"""Risk bands: the one place where a churn probability becomes "low", "medium" or "high"."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

BAND_NAMES = ("low", "medium", "high")


class RiskBands(BaseModel):
    """Band edges, a setting (``bands:`` in the churn config, ``CHURN_RISK_BANDS`` for the service)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    medium: float = Field(0.10, ge=0, le=1, description="probability from which risk is medium")
    high: float = Field(0.30, ge=0, le=1, description="probability from which risk is high")

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium > self.high:
            raise ValueError(f"risk band edges must be ordered: medium ({self.medium}) > high ({self.high})")
        return self

    @classmethod
    def parse(cls, text: str) -> RiskBands:
        """From "MEDIUM,HIGH", e.g. "0.1,0.3" (the service's environment variable)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2:
            raise ValueError(f"risk bands must be two probabilities 'MEDIUM,HIGH', got {text!r}")
        try:
            medium, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"risk bands must be two probabilities 'MEDIUM,HIGH', got {text!r}") from None
        return cls(medium=medium, high=high)

    def floor(self, name: str) -> float:
        """The lowest probability of the band ``name``."""
        return {"low": 0.0, "medium": self.medium, "high": self.high}[name]

    def band(self, p: float) -> str:
        return "high" if p >= self.high else "medium" if p >= self.medium else "low"

    def bands(self, p: np.ndarray) -> np.ndarray:
        """The band of every probability in ``p`` (the vectorised ``band``)."""
        p = np.asarray(p, dtype=float)
        return np.where(p >= self.high, "high", np.where(p >= self.medium, "medium", "low"))

    def shares(self, p: np.ndarray) -> dict[str, float]:
        labels = self.bands(p)
        return {b: float((labels == b).mean()) if len(labels) else float("nan")
                for b in BAND_NAMES}

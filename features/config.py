"""Typed settings for features and labels. Built once at the edge (CLI, tests) and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.btyd import BtydConfig

Definition = Literal["noncontractual", "contractual"]


class FeatureConfig(BaseModel):
    """Which windows and categories the point-in-time features use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    windows: tuple[int, ...] = Field((30, 90, 365), description="look-back windows in days")
    trend_window: int = Field(90, gt=0, description="recent window compared with the one before")
    slow_ticket_hours: float = Field(72.0, gt=0, description="a ticket resolved slower is 'slow'")
    ticket_channels: tuple[str, ...] = ("phone", "email", "chat")
    event_types: tuple[str, ...] | None = Field(None, description=(
        "engagement event types with activity features of their own; empty = found in the data "
        "(and then recorded with the model so that scoring builds the same columns)"))
    valued_event_types: tuple[str, ...] | None = Field(None, description=(
        "those of event_types whose events carry a value (value sums); found with them"))
    max_event_types: int = Field(12, ge=0, description="at most this many types get features; "
                                 "the rarer ones are grouped as 'other types'")
    min_event_share: float = Field(0.001, ge=0, le=1, description=(
        "a type below this share of all events is grouped as 'other types'"))
    btyd: BtydConfig | None = Field(BtydConfig(), description=(
        "buy-till-you-die features (BG/NBD, Gamma-Gamma) and how they are fitted; null = none"))
    horizon_days: int = Field(90, gt=0, description=(
        "horizon of the BTYD expectations; set to the label horizon when features are built"))
    btyd_fits: dict[str, dict | None] | None = Field(None, description=(
        "the BTYD models fitted on every customer at each cutoff (found when features are built "
        "and recorded with the model)"))

    @field_validator("windows")
    @classmethod
    def _windows_positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(w <= 0 for w in v):
            raise ValueError("windows must be a non-empty list of positive day counts")
        return tuple(sorted(set(v)))

    @property
    def long_window(self) -> int:
        return max(self.windows)


class LabelConfig(BaseModel):
    """How churn is defined."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    definition: Definition = "noncontractual"
    horizon_days: int = Field(90, gt=0, description="churn is judged over (t, t + horizon]")
    contract_flag: str = Field("has_contract", description=(
        "customers column that marks contract customers (contractual population); if the "
        "column is absent every customer is in that population"))

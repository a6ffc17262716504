"""The offer catalogue (config, not code): loaded from YAML and validated with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.errors import BadInput

DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.yaml")
Reason = Literal["support", "price", "engagement", "any"]  # the churn reasons an offer addresses
# the feature families behind each churn reason (customer attributes always count)
REASON_FAMILIES = {"price": ("rfm",), "support": ("support", "voice"),
                   "engagement": ("engagement", "activity", "offers")}
ALWAYS_FAMILIES = ("static",)


class CatalogueError(BadInput):
    pass


class Eligibility(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segments: tuple[str, ...] | None = None
    plans: tuple[str, ...] | None = None
    min_customer_value: float = Field(0.0, ge=0)
    risk_range: tuple[float, float] = (0.0, 1.0)
    contract: Literal["any", "contract", "no_contract"] = "any"

    @field_validator("risk_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0 <= lo <= hi <= 1):
            raise ValueError(f"risk_range must be [low, high] within 0..1, got {list(v)}")
        return v


class Offer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    cost: float = Field(ge=0)
    eligibility: Eligibility = Eligibility()
    addresses: tuple[Reason, ...] = ("any",)
    cap_per_campaign: int = Field(10**9, ge=0)
    prior_effect: float = Field(ge=-1, le=1)


def _frozen(values: list[float]) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)  # shared by every request: never changed in place
    return array


@dataclass(frozen=True, eq=False)
class OfferArrays:
    """Offers' numbers side by side, in catalogue order, as rows to compare a block of customers
    with: costs, risk ranges and minimum customer values, and the few offers that also have a
    segment, plan or contract rule (``scoring.offers.policy.eligible_block`` applies the rules).
    ``eq=False``: compared by identity, so a catalogue holding one still compares by its fields."""

    costs: np.ndarray
    risk_low: np.ndarray
    risk_high: np.ndarray
    min_value: np.ndarray
    restricted: tuple[tuple[int, Eligibility], ...]  # (offer index, its rules)
    offers: tuple[Offer, ...] = ()  # what they were worked out from

    @classmethod
    def of(cls, offers: Sequence[Offer]) -> OfferArrays:
        rules = [o.eligibility for o in offers]
        return cls(_frozen([o.cost for o in offers]),
                   _frozen([e.risk_range[0] for e in rules]),
                   _frozen([e.risk_range[1] for e in rules]),
                   _frozen([e.min_customer_value for e in rules]),
                   tuple((j, e) for j, e in enumerate(rules)
                         if e.segments is not None or e.plans is not None or e.contract != "any"),
                   tuple(offers))


class UpliftSettings(BaseModel):
    """How offer effects are learnt from past campaigns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["gone", "label"] = Field("gone", description=(
        "what a campaign is judged on: 'gone' = the customer cancelled within the horizon, or "
        "(no contract) showed no sign of life in the gone_after_days after it; 'label' = the "
        "churn label itself"))
    gone_after_days: int = Field(30, gt=0, le=365)
    passive_events: tuple[str, ...] = Field(("email_sent", "email_open"), description=(
        "engagement event types that are not a sign of life (sent by us, or opened by anyone)"))
    effect_features: Literal["all", "reasons"] = Field("all", description=(
        "which features the effect may vary with: those of the churn reasons the offer addresses "
        "(plus the customer attributes), or all of them"))
    ridge_effect: float = Field(1000.0, ge=0, description=(
        "ridge penalty on how the effect varies with the features (larger = closer to one "
        "average effect per offer)"))
    ridge_risk: float = Field(10.0, ge=0, description=(
        "ridge penalty on the linear correction of the churn model's risk to the outcome"))


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_cooldown_days: int = Field(60, ge=0)
    min_campaign_size: int = Field(200, ge=1)
    evidence_z: float = Field(1.645, ge=0, description=(
        "a learnt effect is trusted only as far as held-out campaigns show it: its observed "
        "churn cut minus this many standard errors (one-sided; 0 = the observed cut as it is)"))
    uplift: UpliftSettings = UpliftSettings()
    offers: tuple[Offer, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalogue:
        seen, dup = set(), []
        for o in self.offers:
            (dup.append(o.id) if o.id in seen else seen.add(o.id))
        if dup:
            raise ValueError(f"offer ids must be unique; repeated: {sorted(set(dup))}")
        return self

    def offer(self, offer_id: str) -> Offer:
        for o in self.offers:
            if o.id == offer_id:
                return o
        raise KeyError(offer_id)

    @property
    def ids(self) -> list[str]:
        return [o.id for o in self.offers]

    @property
    def arrays(self) -> OfferArrays:
        """The offers' costs and eligibility rules as arrays: worked out once per catalogue (it is
        frozen), not on every request; worked out again for a copy with other offers
        (``model_copy(update=...)`` copies the cache with the fields)."""
        cached = self.__dict__.get("_offer_arrays")
        if cached is None or cached.offers is not self.offers:
            cached = OfferArrays.of(self.offers)
            self.__dict__["_offer_arrays"] = cached
        return cached

    @property
    def costs(self) -> np.ndarray:
        """Each offer's cost, in catalogue order (read-only)."""
        return self.arrays.costs


def _where(loc: tuple, data: dict) -> str:
    parts = []
    for i, key in enumerate(loc):
        if key == "offers" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            offers = data.get("offers") or []
            idx = loc[i + 1]
            oid = offers[idx].get("id") if idx < len(offers) and isinstance(offers[idx], dict) \
                else None
            parts.append(f"offers[{idx}]" + (f" ({oid})" if oid else ""))
        elif isinstance(key, int) and i > 0 and loc[i - 1] == "offers":
            continue
        else:
            parts.append(str(key))
    return ".".join(parts)


def parse_catalogue(data: dict, source: str = "catalogue") -> Catalogue:
    if not isinstance(data, dict):
        raise CatalogueError(f"{source}: expected a mapping with an 'offers' list")
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        lines = [f"  - {_where(e['loc'], data)}: {e['msg']}" for e in exc.errors()]
        raise CatalogueError(f"{source} is not a valid offer catalogue:\n" + "\n".join(lines)) \
            from exc


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    path = Path(path) if path else DEFAULT_CATALOGUE
    if not path.exists():
        raise CatalogueError(f"offer catalogue {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path} is not valid YAML: {exc}") from exc
    return parse_catalogue(data, str(path))

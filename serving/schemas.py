"""The API's request and response types (the OpenAPI schema at ``/docs.json`` comes from them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_ITEMS = 1000
FeatureValue = Annotated[float, Field(allow_inf_nan=False)] | bool | str | None
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CustomerItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    features: dict[str, FeatureValue] | None = Field(
        None, description="the customer's features; when absent they are read from the online "
                          "store")


class ScoreRequest(BaseModel):
    """The body of ``POST /score``."""

    model_config = ConfigDict(extra="forbid")

    customers: Annotated[list[CustomerItem], Field(min_length=1, max_length=MAX_ITEMS)]
    top_reasons: Annotated[int, Field(ge=0, le=20, description="reasons per customer")] = 3


class Reason(BaseModel):
    feature: str
    value: float | str | None
    contribution: float
    direction: str
    text: str


class OfferOut(BaseModel):
    offer_id: str
    name: str
    channel: str
    expected_net_value: float
    churn_reduction: float
    cost: float
    customer_value: float
    effect_source: str | None
    addresses: list[str]
    why: str


class ScoreItem(BaseModel):
    customer_id: str
    churn_probability: float | None = None
    risk_band: str | None = None
    reasons: list[Reason] = []
    offer: OfferOut | None = None
    offer_explanation: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    features_as_of: str | None = Field(None, description="date of the stored features; null "
                                                         "when they came with the request")
    error: str | None = Field(None, description="why this item could not be scored")


class ServedModel(BaseModel):
    name: str | None
    version: str | None
    source: str | None = Field(None, description="registry, or cache: the local copy kept of "
                                                 "the last model loaded")
    degraded: bool = Field(False, description="true while the registry cannot be reached: the "
                                              "service cannot see a newly promoted model")


class ServedStore(BaseModel):
    version: str | None = Field(None, description="the online store's version stamp (a content "
                                                  "hash) that answered the by-id lookups")
    written_at: str | None = None
    customers: int | None = None


class ScoreResponse(BaseModel):
    results: list[ScoreItem]
    model: ServedModel | None = None
    store: ServedStore | None = None

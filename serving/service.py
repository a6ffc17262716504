"""The BentoML service the CRM calls: scores, reasons and offers, by customer id or by features.

Settings come from the environment once, when a worker starts (see ``serving.settings``). The model
is ``models:/churn@champion`` by default; a watcher thread polls the registry and swaps in a newly
promoted champion without a restart: a request holds the core it started with, so none fails
during the swap, and every answer names the model version that produced it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Annotated, Any

import bentoml
import numpy as np
from mlflow import MlflowClient
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from features.store import SQLiteStore
from scoring.core import ScoringCore
from scoring.model_store import load_scorer, resolve, use_tracking
from scoring.offers.catalogue import load_catalogue
from serving.bentoml_fixes import cancel_request_timers
from serving.middleware import (
    AccessLogMiddleware,
    EnvApiKeyMiddleware,
    EnvBodyLimitMiddleware,
    JsonOnlyMiddleware,
)
from serving.settings import ServeSettings, workers_from_env

log = logging.getLogger("churn.service")
cancel_request_timers()  # BentoML keeps every request alive for the whole timeout otherwise

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


class ScoreResponse(BaseModel):
    results: list[ScoreItem]


class _ClientErrorFilter(logging.Filter):
    """A malformed request is the client's error: log one line, never a stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError) and (exc.title == "Input"
                                                 or exc.title.endswith("IODescriptor")):
            record.msg = "rejected a malformed request: %s"
            record.args = (f"{exc.error_count()} validation error(s)",)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_client_errors() -> None:
    for name in ("bentoml._internal.server.http_app", "_bentoml_impl.server.app"):
        logging.getLogger(name).addFilter(_ClientErrorFilter())


def _metrics():
    return {
        "scores": bentoml.metrics.Histogram(
            name="churn_probability", documentation="churn probabilities served",
            buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)),
        "items": bentoml.metrics.Counter(
            name="churn_items", documentation="customers scored, by outcome",
            labelnames=["outcome"]),
        "offers": bentoml.metrics.Counter(
            name="churn_offers", documentation="offers recommended", labelnames=["offer_id"]),
        "version": bentoml.metrics.Gauge(
            name="churn_model_version", documentation="model version in use (1 = current)",
            labelnames=["model_name", "model_version"]),
    }


def _freeze_heap() -> None:
    """Move everything alive now (libraries, the model) out of the garbage collector's sight.

    With mlflow, bentoml, pandas and the model loaded a worker holds ~400,000 objects and a full
    collection takes ~200 ms, stalling every request in flight: that was the p99 at 100 req/s.
    Frozen objects are never traversed again; request garbage is still collected as usual."""
    gc.collect()
    gc.freeze()


@bentoml.service(name="churn", traffic={"timeout": 30}, workers=workers_from_env())
class ChurnService:
    def __init__(self) -> None:
        quiet_client_errors()
        self.settings = ServeSettings.from_env()
        self.tracking = use_tracking()  # pinned: the watcher never follows a changed default
        self.catalogue = load_catalogue(self.settings.catalogue)
        self.store = SQLiteStore(self.settings.store)
        self.metrics = _metrics()
        self.core: ScoringCore | None = None
        self._load()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="champion-watcher", daemon=True).start()

    # --- model lifecycle ---------------------------------------------------------------------
    def _load(self) -> None:
        loaded = load_scorer(self.settings.model_uri, tracking=self.tracking)
        core = ScoringCore(loaded, self.catalogue, self.settings.value, self.settings.bands)
        # the first call builds the tree arrays and loads the compiled walk: not on a request
        core.score_block(np.full((1, len(loaded.scorer.features)), np.nan), top_k=3, threads=1)
        old = self.core
        self.core = core  # one reference swap: requests keep the core they started with
        _freeze_heap()
        if old is not None:
            self.metrics["version"].labels(old.model.name or "", old.model.version or "").set(0)
        self.metrics["version"].labels(loaded.name or "", loaded.version or "").set(1)
        log.info("serving %s version %s", loaded.name, loaded.version)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            try:
                client = MlflowClient(tracking_uri=self.tracking, registry_uri=self.tracking)
                _, version = resolve(self.settings.model_uri, client)
                if version is not None and version != self.core.model.version:
                    log.info("new model version %s found; loading", version)
                    self._load()
            except Exception:  # noqa: BLE001 - keep serving the current model
                log.exception("could not check or load the model; keeping version %s",
                              self.core.model.version if self.core else None)

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()

    def __is_ready__(self) -> bool:
        return self.core is not None and self.store is not None

    # --- the API -----------------------------------------------------------------------------
    @bentoml.api(route="/score", input_spec=ScoreRequest)
    def score(self, customers: list[CustomerItem], top_reasons: int = 3) -> ScoreResponse:
        """Score customers by id (features from the online store) or with their features."""
        started = time.perf_counter()
        core = self.core
        if len(customers) > self.settings.max_items:
            raise bentoml.exceptions.InvalidArgument(
                f"customers: at most {self.settings.max_items} items per request")
        scorer = core.model.scorer
        results: list[dict[str, Any]] = [{"customer_id": c.customer_id} for c in customers]
        stored = self.store.get_many([c.customer_id for c in customers if c.features is None])
        rows, where = [], []
        for i, c in enumerate(customers):
            if c.features is None:
                hit = stored.get(c.customer_id)
                if hit is None:
                    results[i]["error"] = "unknown customer_id: not in the online feature store"
                    continue
                results[i]["features_as_of"], features = hit
            else:
                features = c.features
            # the store may hold features this model does not use (another model's, or a wider
            # event vocabulary): only a client's own unknown names are an error
            x, problems = scorer.row(features, ignore_unknown=c.features is None)
            if problems:
                results[i]["error"] = "; ".join(problems[:5])
                continue
            rows.append(x)
            where.append(i)
        if rows:
            scored = core.score_block(np.vstack(rows), top_k=top_reasons, threads=1)
            for i, item in zip(where, scored, strict=True):
                results[i].update(item)
                self.metrics["scores"].observe(item["churn_probability"])
                offer = item.get("offer")
                self.metrics["offers"].labels(offer["offer_id"] if offer else "none").inc()
        for r in results:
            r["model_name"], r["model_version"] = core.model.name, core.model.version
            self.metrics["items"].labels("error" if r.get("error") else "scored").inc()
        log.debug("scored %d items (%d errors) with version %s in %.1f ms", len(results),
                 len(results) - len(rows), core.model.version,
                 (time.perf_counter() - started) * 1000)
        return ScoreResponse(results=[ScoreItem(**r) for r in results])


ChurnService.add_asgi_middleware(AccessLogMiddleware)
ChurnService.add_asgi_middleware(EnvApiKeyMiddleware)
ChurnService.add_asgi_middleware(EnvBodyLimitMiddleware)
ChurnService.add_asgi_middleware(JsonOnlyMiddleware)

"""The BentoML service the CRM calls: scores, reasons and offers, by customer id or by features.

Settings come from the environment once, when a worker starts (see ``serving.settings``). The model
is ``models:/churn@champion`` by default; watcher threads (``serving.refresh``) poll the registry
and the online store file and swap in a newly promoted champion or a newly materialised store
without a restart: a request holds the core and the store it started with, so none fails during
a swap, and every answer names the model version and the store version that produced it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

import bentoml
import numpy as np
from pydantic import ValidationError

from scoring.core import ScoringCore
from scoring.model_store import LoadedModel, use_tracking
from scoring.offers.catalogue import load_catalogue
from serving.bentoml_fixes import bound_metric_labels, cancel_request_timers
from serving.limits import route_labels
from serving.middleware import (
    AccessLogMiddleware,
    EnvApiKeyMiddleware,
    EnvBodyLimitMiddleware,
    JsonOnlyMiddleware,
    ReadinessMiddleware,
    UnavailableMiddleware,
    publish_readiness,
)
from serving.refresh import ModelHolder, StoreHolder, watch
from serving.schemas import CustomerItem, ScoreItem, ScoreRequest, ScoreResponse
from serving.settings import ServeSettings, workers_from_env

log = logging.getLogger("churn.service")
API_ROUTES = ("/score",)
cancel_request_timers()  # BentoML keeps every request alive for the whole timeout otherwise
bound_metric_labels(route_labels(API_ROUTES))  # and labels metrics by any path a client sends


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
    # urllib3 logs every retry of every MLflow call (two lines a poll while the registry is
    # down); the service logs the outage itself, once when it starts and once when it ends
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


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
        "degraded": bentoml.metrics.Gauge(
            name="churn_degraded", documentation="1 while the registry is unreachable, a store "
                                                 "file was refused or nothing is loaded"),
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
        self.settings = s = ServeSettings.from_env()
        self.tracking = use_tracking()  # pinned: the watcher never follows a changed default
        self.catalogue = load_catalogue(s.catalogue)
        self.metrics = _metrics()
        self.stores = StoreHolder(s.store)
        self.models = ModelHolder(s.model_uri, self.tracking, s.model_cache, self._build,
                                  self._swapped)
        publish_readiness(self.readiness, self.unavailable)
        self.readiness()
        self._stop = threading.Event()
        watch(self._stop, s.poll_seconds, lambda: self.models.check() or self.readiness(),
              "champion-watcher")
        watch(self._stop, s.store_check_seconds, lambda: self.stores.check() or self.readiness(),
              "store-watcher")

    # --- model lifecycle ---------------------------------------------------------------------
    def _build(self, loaded: LoadedModel) -> ScoringCore:
        core = ScoringCore(loaded, self.catalogue, self.settings.value, self.settings.bands)
        # the first call builds the tree arrays and loads the compiled walk: not on a request
        core.score_block(np.full((1, len(loaded.scorer.features)), np.nan), top_k=3, threads=1)
        return core

    def _swapped(self, old: ScoringCore | None, new: ScoringCore) -> None:
        _freeze_heap()
        if old is not None:
            self.metrics["version"].labels(old.model.name or "", old.model.version or "").set(0)
        self.metrics["version"].labels(new.model.name or "", new.model.version or "").set(1)

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()

    def __is_ready__(self) -> bool:
        return self.readiness()[0]

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when a model and a store are loaded; "degraded" while the registry is down or
        a new store file was refused (the service still answers)."""
        model, store = self.models.status(), self.stores.status()
        ready = self.models.core is not None and self.stores.store is not None
        problems = [p for p in (
            None if self.models.core else "no model loaded",
            None if self.stores.store else "no online store loaded",
            model["registry_error"] and f"registry unreachable: {model['registry_error']}",
            store["refused"] and f"store file refused: {store['refused']['error']}") if p]
        status = "not ready" if not ready else "degraded" if problems else "ok"
        self.metrics["degraded"].set(0 if status == "ok" else 1)
        return ready, {"status": status, "problems": problems, "model": model, "store": store}

    def unavailable(self) -> str | None:
        if self.models.core is None:
            return ("no model loaded yet: the registry cannot be reached and there is no local "
                    f"copy ({self.models.registry_error}); retrying every "
                    f"{self.settings.poll_seconds:g} s")
        return None

    # --- the API -----------------------------------------------------------------------------
    @bentoml.api(route=API_ROUTES[0], input_spec=ScoreRequest)
    def score(self, customers: list[CustomerItem], top_reasons: int = 3) -> ScoreResponse:
        """Score customers by id (features from the online store) or with their features."""
        started = time.perf_counter()
        core, store = self.models.core, self.stores.store
        if core is None:  # UnavailableMiddleware answers first: only in a race at start
            raise bentoml.exceptions.ServiceUnavailable(self.unavailable() or "no model")
        if len(customers) > self.settings.max_items:
            raise bentoml.exceptions.InvalidArgument(
                f"customers: at most {self.settings.max_items} items per request")
        scorer = core.model.scorer
        results: list[dict[str, Any]] = [{"customer_id": c.customer_id} for c in customers]
        wanted = [c.customer_id for c in customers if c.features is None]
        stored = store.get_many(wanted) if store is not None else {}
        rows, where = [], []
        for i, c in enumerate(customers):
            if c.features is None:
                hit = stored.get(c.customer_id)
                if hit is None:
                    results[i]["error"] = ("unknown customer_id: not in the online feature store"
                                           if store is not None else
                                           "the online feature store is not available")
                    continue
                results[i]["features_as_of"], features = hit
            else:
                features = c.features
            # the store may hold features this model does not use (another model's, or a wider
            # event vocabulary): only a client's own unknown names are an error
            x, problems = scorer.row(features, ignore_unknown=c.features is None)
            # values the model's specification does not allow (scoring.limits): this item only
            problems = problems or scorer.limits.item_problems(features, x)
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
        return ScoreResponse(
            results=[ScoreItem(**r) for r in results],
            model={"name": core.model.name, "version": core.model.version,
                   "source": self.models.source, "degraded": self.models.degraded},
            store=None if store is None else {"version": store.stamp.version,
                                              "written_at": store.stamp.written_at,
                                              "customers": len(store)})


ChurnService.add_asgi_middleware(ReadinessMiddleware)
ChurnService.add_asgi_middleware(AccessLogMiddleware)
ChurnService.add_asgi_middleware(EnvApiKeyMiddleware)
ChurnService.add_asgi_middleware(UnavailableMiddleware)
ChurnService.add_asgi_middleware(EnvBodyLimitMiddleware)
ChurnService.add_asgi_middleware(JsonOnlyMiddleware)

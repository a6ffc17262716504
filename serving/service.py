"""The BentoML service the CRM calls: scores, reasons and offers, by customer id or by features.

Settings come from the environment once, when a worker starts (see ``serving.settings``). The model
is ``models:/churn@champion`` by default; watcher threads (``serving.refresh``) poll the registry
and the online store file and swap in a newly promoted champion or a newly materialised store
without a restart: a request holds the core and the store it started with, so none fails during
a swap, and every answer names the model version and the store version that produced it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bentoml
import numpy as np
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from features.store import get_rows
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel, use_tracking
from scoring.offers.catalogue import load_catalogue
from serving.bentoml_fixes import bound_metric_labels, cancel_request_timers
from serving.limits import route_labels
from serving.middleware import EnvServiceGate, publish_readiness
from serving.refresh import ModelHolder, StoreHolder, watch
from serving.schemas import CustomerItem, ScoreItem, ScoreRequest, ScoreResponse
from serving.settings import ServeSettings, workers_from_env

log = logging.getLogger("churn.service")
API_ROUTES = ("/score",)
INLINE_ITEMS = 64  # requests of more customers are scored in a thread: the loop keeps answering
_JSON = TypeAdapter(Any)  # pydantic's serialiser for plain data (ScoreResponse's own rules)
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


def configure_logs(access_log: bool) -> None:
    """The access log at INFO (BentoML's server logging passes only warnings from loggers it
    does not know); client errors as one line; no urllib3 retry noise."""
    logging.getLogger("churn.access").setLevel(logging.INFO if access_log else logging.WARNING)
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


class _Counters:
    """The metrics every request moves, their labelled children looked up once (``labels()``
    takes a lock and builds a key on every call). Offer ids come from the catalogue: bounded."""

    def __init__(self, metrics: dict[str, Any]) -> None:
        self.probability = metrics["scores"]
        self.scored = metrics["items"].labels("scored")
        self.failed = metrics["items"].labels("error")
        self._offers = metrics["offers"]
        self._offer: dict[str, Any] = {}

    def offer(self, offer_id: str):
        child = self._offer.get(offer_id)
        if child is None:
            child = self._offer[offer_id] = self._offers.labels(offer_id)
        return child


def _freeze_heap() -> None:
    """Move everything alive now (libraries, the model) out of the garbage collector's sight.

    With mlflow, bentoml, pandas and the model loaded a worker holds ~400,000 objects and a full
    collection takes ~200 ms, stalling every request in flight: that was the p99 at 100 req/s.
    Frozen objects are never traversed again; request garbage is still collected as usual."""
    gc.collect()
    gc.freeze()


# BentoML's own access line is off: the service writes its own (``churn.access``: one line per
# request with its request id, method, path, status and milliseconds, and BentoML's trace ids),
# so a request is logged once, not twice; CHURN_ACCESS_LOG=0 turns it off.
@bentoml.service(name="churn", traffic={"timeout": 30}, workers=workers_from_env(),
                 logging={"access": {"enabled": False}})
class ChurnService:
    def __init__(self) -> None:
        self.settings = s = ServeSettings.from_env()
        configure_logs(s.access_log)
        self.tracking = use_tracking()  # pinned: the watcher never follows a changed default
        self.catalogue = load_catalogue(s.catalogue)
        self.metrics = _metrics()
        self._counters = _Counters(self.metrics)
        self._large = ThreadPoolExecutor(1, thread_name_prefix="large-requests")
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
        self._large.shutdown(wait=False)

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
    # ``async``: BentoML runs a synchronous API in a worker thread, and for one customer that
    # hand-off cost more than the work (~0.15 ms of CPU: store lookup, score, reasons, offer).
    # Scoring is CPU work that never waits, so a request of a few customers is scored on the
    # event loop; one of more than INLINE_ITEMS goes to a thread of its own so that it does not
    # hold the loop (and the small requests behind it) for its tens of milliseconds.
    @bentoml.api(route=API_ROUTES[0], input_spec=ScoreRequest, output_spec=ScoreResponse)
    async def score(self, customers: list[CustomerItem], top_reasons: int = 3) -> Response:
        """Score customers by id (features from the online store) or with their features."""
        if len(customers) <= INLINE_ITEMS:
            body = self.score_json(customers, top_reasons)
        else:
            try:
                body = await asyncio.get_running_loop().run_in_executor(
                    self._large, self.score_json, customers, top_reasons)
            except RuntimeError as e:  # the thread was shut down: the worker is stopping
                if "after shutdown" not in str(e):
                    raise
                raise bentoml.exceptions.ServiceUnavailable(
                    "the service is shutting down; retry") from e
        return Response(body, media_type="application/json")

    def score_json(self, customers: list[CustomerItem], top_reasons: int = 3) -> bytes:
        """The ``ScoreResponse`` of a request, as JSON (serialised once, from plain dicts shaped
        like the response types: ``tests/serving`` checks the answers against them)."""
        started = time.perf_counter()
        core, store = self.models.core, self.stores.store
        if core is None:  # the gate answers 503 first: only in a race at start
            raise bentoml.exceptions.ServiceUnavailable(self.unavailable() or "no model")
        if len(customers) > self.settings.max_items:
            raise bentoml.exceptions.InvalidArgument(
                f"customers: at most {self.settings.max_items} items per request")
        reader = core.rows
        name, version = core.model.name, core.model.version
        results = [_item(c.customer_id, name, version) for c in customers]
        wanted = [c.customer_id for c in customers if c.features is None]
        stored = get_rows(store, wanted) if store is not None and wanted else {}
        rows, where = [], []
        for i, c in enumerate(customers):
            if c.features is None:
                hit = stored.get(c.customer_id)
                if hit is None:
                    results[i]["error"] = ("unknown customer_id: not in the online feature store"
                                           if store is not None else
                                           "the online feature store is not available")
                    continue
                results[i]["features_as_of"], row = hit
                # the store may hold features this model does not use (another model's, or a
                # wider event vocabulary): only a client's own unknown names are an error
                try:
                    x, problems = reader.read_stored(row)
                except ValueError as exc:  # a row damaged after the store was checked
                    log.warning("online store row of %s unreadable: %s", c.customer_id, exc)
                    results[i]["error"] = "the online feature store's row for this customer " \
                                          "is damaged"
                    continue
            else:
                x, problems = reader.read(c.features)
            # values the model's specification does not allow (scoring.limits) fail this item
            if problems:
                results[i]["error"] = "; ".join(problems[:5])
                continue
            rows.append(x)
            where.append(i)
        counters = self._counters
        if rows:
            scored = core.score_block(np.vstack(rows), top_k=top_reasons, threads=1)
            for i, item in zip(where, scored, strict=True):
                results[i].update(item)
                counters.probability.observe(item["churn_probability"])
                offer = item.get("offer")
                counters.offer(offer["offer_id"] if offer else "none").inc()
            counters.scored.inc(len(rows))
        if len(results) > len(rows):
            counters.failed.inc(len(results) - len(rows))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("scored %d items (%d errors) with version %s in %.1f ms", len(results),
                      len(results) - len(rows), version, (time.perf_counter() - started) * 1000)
        return _JSON.dump_json({
            "results": results,
            "model": {"name": name, "version": version, "source": self.models.source,
                      "degraded": self.models.degraded},
            "store": None if store is None else {"version": store.stamp.version,
                                                 "written_at": store.stamp.written_at,
                                                 "customers": len(store)}})


# a ``ScoreItem``'s fields in their order with their defaults, read from the type once
_BLANK_ITEM = {name: f.get_default(call_default_factory=True)
               for name, f in ScoreItem.model_fields.items()}


def _item(customer_id: str, model_name: str | None, model_version: str | None) -> dict:
    """A ``ScoreItem`` as a dict, every field in its order with its default."""
    return {**_BLANK_ITEM, "customer_id": customer_id, "reasons": [], "model_name": model_name,
            "model_version": model_version}


ChurnService.add_asgi_middleware(EnvServiceGate)

"""What a worker serves and how it stays current: the online store and the model.

``StoreHolder`` checks the store file every ``store_check_seconds`` (a ``stat``; the file is opened
and checked only when its inode, size or mtime changed) and swaps in a new store that passes the
checks; one that does not is refused, logged once, and reported, and the old store keeps serving.

``ModelHolder`` loads the model from the registry (keeping a local copy), or, when the registry
cannot be reached, from the last copy kept: the service then runs *degraded* (it cannot see a new
champion) until the registry answers again. Without a copy it is not ready and keeps trying.

Swaps are one reference assignment: a request keeps the store and the core it started with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from features.store import SQLiteStore, StoreError, file_identity
from scoring.core import ScoringCore
from scoring.model_cache import ModelCache
from scoring.model_store import LoadedModel, resolve

log = logging.getLogger("churn.service")

RETIRE_AFTER = 120.0  # seconds an old store stays open for requests that still hold it


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class StoreHolder:
    def __init__(self, path: Path):
        self.path = path
        self.store: SQLiteStore | None = None
        self.loaded_at: str | None = None
        self.refused: dict[str, Any] | None = None  # the last file refused, while it is there
        self._refused_identity = None
        self._retired: list[tuple[float, SQLiteStore]] = []
        self.check()

    def check(self) -> bool:
        """Swap in a new store file if there is one and it passes; True when swapped."""
        self._close_retired()
        identity = file_identity(self.path)
        if identity is None:
            if self.refused is None or self.refused.get("identity") is not None:
                log.error("online store %s is missing; %s", self.path, self._keeping())
            self.refused = {"identity": None, "at": _now(), "error": "the store file is missing"}
            return False
        if self.store is not None and identity == self.store.identity:
            self.refused = None
            return False
        if identity == self._refused_identity:
            return False  # refused already: logged once, reported on /readyz
        try:
            new = SQLiteStore(self.path)
        except (StoreError, OSError) as exc:
            self._refused_identity = identity
            self.refused = {"identity": list(identity), "at": _now(), "error": str(exc)}
            log.error("refused the online store file: %s; %s", exc, self._keeping())
            return False
        old, self.store = self.store, new
        self.loaded_at, self.refused, self._refused_identity = _now(), None, None
        if old is not None:
            self._retired.append((time.monotonic(), old))
        log.info("serving online store version %s (%d customers, written %s)",
                 new.stamp.version, len(new), new.stamp.written_at)
        return True

    def _keeping(self) -> str:
        return (f"still serving version {self.store.stamp.version}" if self.store
                else "no store to serve")

    def _close_retired(self) -> None:
        cutoff = time.monotonic() - RETIRE_AFTER
        while self._retired and self._retired[0][0] < cutoff:
            self._retired.pop(0)[1].close()

    def status(self) -> dict[str, Any]:
        s = self.store
        refused = None if self.refused is None else {k: v for k, v in self.refused.items()
                                                     if k != "identity"}
        return {**(s.describe() if s else {"path": str(self.path), "version": None}),
                "loaded_at": self.loaded_at, "refused": refused}


class ModelHolder:
    def __init__(self, model_uri: str, tracking: str, cache_dir: Path,
                 build: Callable[[LoadedModel], ScoringCore],
                 on_swap: Callable[[ScoringCore | None, ScoringCore], None]):
        self.model_uri, self.tracking = model_uri, tracking
        self.cache = ModelCache(cache_dir, model_uri, tracking)
        self.build, self.on_swap = build, on_swap
        self.core: ScoringCore | None = None
        self.source: str | None = None       # "registry" or "cache": where the copy came from
        self.registry_error: str | None = None
        self.registry_down_since: str | None = None
        self.cache_saved_at: str | None = None
        self.start()

    @property
    def degraded(self) -> bool:
        return self.registry_error is not None

    def start(self) -> None:
        try:
            loaded = self.cache.fetch()
        except Exception as exc:  # noqa: BLE001 - the registry is down or refuses: try the copy
            first = self.registry_error is None
            self._registry_failed(exc)
            kept = self.cache.latest()
            if kept is None:
                if first:
                    log.error("no model: the registry cannot be reached and there is no local "
                              "copy in %s; retrying", self.cache.folder)
                return
            loaded, self.cache_saved_at = kept
            self._swap(loaded, "cache")
            log.warning("serving %s version %s from the local copy saved %s (degraded: the "
                        "registry cannot be reached)", loaded.name, loaded.version,
                        self.cache_saved_at)
            return
        self._registry_ok()
        self._swap(loaded, "registry")

    def check(self) -> None:
        """Ask the registry which version the URI names; load it if it is another one."""
        try:
            if self.core is None:
                return self.start()
            client = MlflowClient(tracking_uri=self.tracking, registry_uri=self.tracking)
            _, version = resolve(self.model_uri, client)
            if version is not None and version != self.core.model.version:
                log.info("new model version %s found; loading", version)
                loaded = self.cache.fetch()
                self._registry_ok()
                self._swap(loaded, "registry")
            self._registry_ok()
        except Exception as exc:  # noqa: BLE001 - keep serving the current model
            self._registry_failed(exc)

    def _swap(self, loaded: LoadedModel, source: str) -> None:
        core = self.build(loaded)
        old, self.core, self.source = self.core, core, source
        self.on_swap(old, core)
        log.info("serving %s version %s (from the %s)", loaded.name, loaded.version, source)

    def _registry_ok(self) -> None:
        if self.registry_error is not None:
            log.warning("the model registry at %s answers again", self.tracking)
        self.registry_error = self.registry_down_since = None

    def _registry_failed(self, exc: BaseException) -> None:
        if self.registry_error is None:
            self.registry_down_since = _now()
            log.warning("cannot reach the model registry at %s (%s); keeping version %s",
                        self.tracking, _one_line(exc),
                        self.core.model.version if self.core else None)
        self.registry_error = _one_line(exc)

    def status(self) -> dict[str, Any]:
        m = self.core.model if self.core else None
        return {"uri": self.model_uri, "name": m.name if m else None,
                "version": m.version if m else None, "source": self.source,
                "degraded": self.degraded, "registry_error": self.registry_error,
                "registry_down_since": self.registry_down_since,
                "copy_saved_at": self.cache_saved_at if self.source == "cache" else None}


def watch(stop: threading.Event, seconds: float, check: Callable[[], Any], name: str) -> None:
    """Run ``check`` every ``seconds`` in a daemon thread until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                check()
            except Exception:  # noqa: BLE001 - a check must never end its thread
                log.exception("%s check failed", name)

    threading.Thread(target=loop, name=name, daemon=True).start()

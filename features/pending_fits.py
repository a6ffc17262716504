"""The BTYD fits of the streamed build made while the workers already read and check their parts.

The fits need every part's purchase summary (``features.scan``'s first pass), and the features
need the fits; but reading, checking and sorting a part does not. So with several workers the
first pass leaves its spooled summaries to a :class:`PendingFits`, the build pass starts at once,
and this process fits in a thread while the workers read their first parts (before, both workers
sat idle for the fit, about 1 s at 1M customers). Only for summaries up to ``OVERLAP_UP_TO``
(the fit's memory grows with the customers; the workers' does not). A worker that reaches its features waits for
the fits file (:func:`await_fits`); the file is whole or not there (written, then renamed).

A fit that fails leaves a marker instead, on which the waiting workers stop (:class:`FitsFailed`);
the caller raises the fit's own error (:meth:`PendingFits.fits`). When neither the fits nor the
marker can be written (a full disk, no permission), the thread removes the folder. A worker also
stops waiting when the folder goes (the caller stopped and cleaned up) or when the process that
started its pool is no longer its parent (the caller died: ``features.parallel.owner_gone``).
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path

from features.config import FeatureConfig
from features.io import write_atomic
from features.parallel import owner_gone
from features.scratch import Scratch, remove

POLL_S = 0.005  # a worker's look for the fits file while it waits
# spooled summary bytes (all cutoffs) up to which the fits overlap the workers. A fit's peak is
# about 3.4 times its summaries (88 MB for 26 MB at 1M customers, one cutoff; about 0.9 GB at
# 10M), held here while both workers hold a part: beyond this the fits are made before the build
# pass as they were, so the summed peak never grows with the number of customers (the overlap
# saves about a second, what matters at 1M; at 10M it would add 0.9 GB to a 2.2 GB peak)
OVERLAP_UP_TO = 64 << 20


class FitsFailed(RuntimeError):
    """The fits this worker waited for were not made (the caller raises why)."""


class PendingFits:
    """Fits still to make (``fit``: the fits by cutoff, from the spooled summaries) and the scratch
    folder that holds the spool (removed by :meth:`cleanup`). :meth:`start` fits in a thread and
    leaves the result in ``path`` for the workers."""

    def __init__(self, fit: Callable[[], dict], folder: Scratch):
        self._fit, self._folder = fit, folder
        self._thread: threading.Thread | None = None
        self._fits: dict | None = None
        self._error: BaseException | None = None

    def start(self, path: Path) -> None:
        self._thread = threading.Thread(target=self._run, args=(Path(path),), daemon=True,
                                        name="btyd-fits")
        self._thread.start()

    def fits(self) -> dict:
        """The fits (waits for the thread); raises the fit's error."""
        if self.failure() is not None:
            raise self._error
        if self._fits is None:
            raise RuntimeError("the BTYD fits were never started")
        return self._fits

    def failure(self) -> BaseException | None:
        """Why the fits were not made or not handed over (waits for the thread), or None."""
        if self._thread is not None:
            self._thread.join()
        return self._error

    def cleanup(self) -> None:
        """Wait for the thread (a fit takes about a second) and remove the spool."""
        self.failure()
        self._folder.cleanup()

    def _run(self, path: Path) -> None:
        try:
            self._fits = self._fit()
            _publish(path, {"fits": self._fits})
        except BaseException as exc:  # noqa: BLE001 - raised in the caller by ``fits``
            self._error = exc
            try:
                _publish(path, {"failed": f"{type(exc).__name__}: {exc}"})
            except OSError:  # nothing can be written there (or the caller removed it already):
                remove(path.parent)  # the waiting workers stop on it


def await_fits(path: Path, config: FeatureConfig) -> FeatureConfig:
    """``config`` with the fits that the caller publishes at ``path`` (waits for them)."""
    while not path.exists():
        if not path.parent.exists():
            raise FitsFailed(f"the build stopped before its BTYD fits were made ({path.parent} "
                             "is gone)")
        if owner_gone():
            raise FitsFailed("the build's process ended before its BTYD fits were made")
        time.sleep(POLL_S)
    with path.open("rb") as f:
        found = pickle.load(f)
    if "failed" in found:
        raise FitsFailed(f"the BTYD fits failed: {found['failed']}")
    return config.model_copy(update={"btyd_fits": found["fits"]})


def _publish(path: Path, content: dict) -> None:
    """``content`` at ``path``, whole or not there; fails (rather than creating the folder again)
    when the caller removed the folder."""
    def dump(tmp: Path) -> None:
        with tmp.open("wb") as f:
            pickle.dump(content, f, protocol=pickle.HIGHEST_PROTOCOL)

    write_atomic(path, dump, mkdir=False)

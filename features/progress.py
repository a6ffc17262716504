"""Progress bars for the long jobs, and the one summary line that closes each of them.

Every long job (sample generation, feature build, training and tuning, batch and Spark jobs)
draws its bar with :func:`bar` (``tqdm`` on standard error). Bars are shown only where someone
watches: when standard error is a terminal, unless the command line turned them off
(``churn --quiet``). ``CHURN_PROGRESS=1`` forces them on (a log file, a CI job that wants them),
``CHURN_PROGRESS=0`` off; the command line's ``--quiet`` wins over both.

:func:`measured` times a job and reads the process's peak memory, for the summary line the
command line prints at the end ("features build: 1,234,567 rows in 81.6 s, peak memory 2.1 GB").
Library code only logs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tqdm import tqdm

log = logging.getLogger(__name__)

PROGRESS_ENV = "CHURN_PROGRESS"
_ON, _OFF = ("1", "true", "yes", "on", "always"), ("0", "false", "no", "off", "never")
_quiet = False  # set by the command line's --quiet


def set_quiet(quiet: bool) -> None:
    """``churn --quiet``: no bars, whatever the terminal or ``CHURN_PROGRESS`` say."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    return _quiet


def enabled() -> bool:
    """Whether bars are drawn now: not under --quiet; forced by ``CHURN_PROGRESS``; else only
    when standard error is a terminal."""
    if _quiet:
        return False
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in _ON:
        return True
    if forced in _OFF:
        return False
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it",
        **kwargs) -> tqdm:
    """A progress bar on standard error over ``iterable`` (or updated by hand up to ``total``);
    a silent one (same methods, no output) when bars are off, so callers never test for it."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                disable=not enabled(), dynamic_ncols=True, mininterval=0.5, **kwargs)


@contextlib.contextmanager
def polled(read: Callable[[], tuple[int, int] | None], desc: str, unit: str = "task",
           interval: float = 0.5) -> Iterator[None]:
    """A bar fed by polling ``read() -> (done, total)`` from a thread while the body runs: for
    work whose progress lives elsewhere (a Spark job's tasks). Nothing at all when bars are off."""
    if not enabled():
        yield
        return
    progress = bar(desc=desc, unit=unit)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval):
            try:
                state = read()
            except Exception:  # noqa: BLE001 - a progress probe must never break the job
                log.debug("progress probe failed", exc_info=True)
                continue
            if state is not None:
                done, total = state
                progress.total = max(total, done, 1)
                progress.n = done
                progress.refresh()

    thread = threading.Thread(target=poll, name=f"progress-{desc}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        progress.close()


def peak_memory_bytes(children: bool = False) -> int | None:
    """The peak resident memory of this process so far, or with ``children`` of its largest
    finished child process (a feature-build worker, say; 0 when there was none). None where the
    OS does not say."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    peak = resource.getrusage(who).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux gives KiB


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


@dataclass
class Measured:
    """What a finished job did: its rows (set by the job), its time and the peak memory."""

    what: str
    rows: int | None = None
    seconds: float = 0.0
    peak_memory: int | None = None
    unit: str = "rows"
    child_peak_memory: int | None = None  # the largest child process's (workers), if any ran

    def line(self) -> str:
        parts = [f"{self.what}:"]
        if self.rows is not None:
            parts.append(f"{self.rows:,} {self.unit} in")
        parts.append(f"{self.seconds:.1f} s")
        line = " ".join(parts)
        if self.peak_memory is not None:
            line += f", peak memory {_size(self.peak_memory)}"
            if self.child_peak_memory:
                line += f" (largest child process {_size(self.child_peak_memory)})"
        return line


@contextlib.contextmanager
def measured(what: str, unit: str = "rows") -> Iterator[Measured]:
    """Time the body; the caller sets ``.rows``. The summary is logged (and the command line
    prints ``.line()``) only when the body succeeds."""
    job = Measured(what, unit=unit)
    start = time.perf_counter()
    yield job
    job.seconds = time.perf_counter() - start
    job.peak_memory = peak_memory_bytes()
    job.child_peak_memory = peak_memory_bytes(children=True)
    log.info("%s", job.line())

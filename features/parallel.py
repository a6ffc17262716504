"""Customer partitions worked on by several processes at once, results in partition order.

The streamed feature build (``features.stream``) runs each of its passes over the partitions
through :meth:`PartPool.map`: with one worker in this process, one part after the other; with
more, in a pool of worker processes (one per core by default, ``ParallelConfig``), each taking
the next part. Results come back in the parts' order whatever order the workers finish in, so the
output is the same with any number of workers, and one part per worker is built at a time (memory
stays set by the partition, not by the number of customers).

A failure in one worker stops the others: the parts not started are cancelled, the running
workers are ended, and the exception is raised in the caller (a worker that dies outright gives
:class:`WorkerError`). Workers are children of the caller (their CPU time counts in its
children's), forked on Linux (``START_METHOD``).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

MAX_WORKERS = 8  # beyond this the partitions' reads, not the cores, are the limit
QUEUED = 1  # parts submitted beyond one per worker (started as soon as a worker is free)
# fork on Linux: a worker starts in milliseconds with the caller's modules (spawn re-imports
# pandas, pyarrow and scipy in each, seconds of CPU); the pool starts before any part is read
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """One worker per core, at most ``MAX_WORKERS``."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


class ParallelConfig(BaseModel):
    """How many partitions the local feature build works on at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(default_factory=default_workers, ge=1, le=64, description=(
        "worker processes of the local feature build, each building one customer partition at a "
        "time (1 = in the calling process); default one per core, at most 8. Peak memory grows "
        "with it: about one partition per worker"))


class WorkerError(RuntimeError):
    """A worker process died (killed, out of memory) before returning its part's result."""


class PartPool:
    """Worker processes reused by every pass of a build (started on first use; ``close`` ends
    them). With one worker, everything runs in the calling process."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool: cf.ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            names: list[str] | None = None) -> Iterator[R]:
        """``fn(item)`` for each item, yielded in the items' order, ``workers`` at a time (``fn``
        and the items must pickle: module-level functions, plain data). ``names`` name the items
        in the error of a worker that died. A failure ends every worker (the pool cannot be used
        again) and is raised here."""
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            yield from map(fn, items)
            return
        pool = self._start()
        pending: deque[tuple[int, cf.Future]] = deque()
        ok = False
        try:
            nxt = 0
            while nxt < len(items) or pending:
                try:
                    # each worker one part, and one more queued: a worker that is done never
                    # waits for the caller (writing the result before) or for a slower worker
                    # (results come in order); a finished result waits as it came back
                    while nxt < len(items) and len(pending) < self.workers + QUEUED:
                        pending.append((nxt, pool.submit(_run, fn, items[nxt])))
                        nxt += 1
                    _, future = pending[0]
                    result = future.result()
                    pending.popleft()
                    if nxt < len(items):  # the next part starts before the caller takes this
                        pending.append((nxt, pool.submit(_run, fn, items[nxt])))
                        nxt += 1
                except BrokenProcessPool as exc:  # a worker died (in a result or a submit)
                    busy = [j for j, _ in pending] or [nxt]  # which of them died is not known
                    raise WorkerError(
                        "a worker process stopped unexpectedly (killed, or out of memory?) "
                        "while the workers had "
                        + ", ".join(names[j] if names else f"item {j}" for j in busy)) from exc
                yield result
            ok = True
        finally:
            if not ok:
                self._stop([f for _, f in pending])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _start(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context(START_METHOD),
                initializer=_quiet_worker)
        return self._pool

    def _stop(self, futures: list[cf.Future]) -> None:
        if self._pool is not None:
            _stop(self._pool, futures)
            self._pool = None


@contextlib.contextmanager
def part_pool(workers: int = 1) -> Iterator[PartPool]:
    """A :class:`PartPool` whose workers end with the block."""
    pool = PartPool(workers)
    try:
        yield pool
    finally:
        pool.close()


def _stop(pool: cf.ProcessPoolExecutor, futures: list[cf.Future]) -> None:
    """Cancel what has not started and end the running workers (they would only finish parts
    whose results nobody will use)."""
    for f in futures:
        f.cancel()
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way in 3.11
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(timeout=10)
    log.debug("stopped %d workers after a failure", len(processes))


_OWNER: int | None = None  # in a pool's worker: the process that started the pool


def _quiet_worker() -> None:
    """Workers draw no progress bars (the caller draws one over the parts), and know their
    owner (``owner_gone``)."""
    from features.progress import set_quiet

    global _OWNER
    _OWNER = os.getppid()
    set_quiet(True)


def owner_gone() -> bool:
    """In a pool's worker: whether the process that started the pool has ended (the worker was
    handed to another parent). False outside a pool's worker."""
    return _OWNER is not None and os.getppid() != _OWNER


def _run(fn: Callable[[T], R], item: T) -> R:
    """``fn(item)`` in a worker, then the memory that it freed given back to the system (glibc
    keeps freed heap memory, and a long-lived worker's footprint grew part after part)."""
    try:
        return fn(item)
    finally:
        _trim()


def _trim() -> None:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else False
            _LIBC.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None  # glibc once looked up (False: not there)

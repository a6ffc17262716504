"""Customer partitions worked on by Spark executors, results back in partition order: the
``features.parallel.PartPool`` contract on a Spark session, so that the local engine's passes
(``features.stream.build_to_parquet``, ``features.scan.scan_source``) run their per-part
functions on a cluster unchanged.

``SparkPool.map(fn, items)`` runs each ``fn(item)`` as a Spark job of one task (one item, one
partition), submitted from driver threads and collected in the items' order. Like ``PartPool``,
``features.parallel.QUEUED`` (one) job more than ``in_flight`` (default: the session's cores) is
submitted: ``in_flight + QUEUED`` at a time, one driver thread each. With ``in_flight`` the
cores, the one beyond waits in Spark's queue and starts as soon as a core is free (with fewer
than the cores, it runs at once). A result is handed over as soon as it and those before it are
back, and the job that takes its place is submitted before it is handed over, so a free core
never waits for the caller. The driver holds at most
``in_flight + QUEUED`` finished results waiting for their turn besides the one the caller has,
never all of them. With a spill folder (``spark_pool(spill_beside=...)``) each task writes a
result larger than ``SPILL_ABOVE`` there and the driver reads it only when its turn comes, so a
part's rows never cross the JVM and the waiting ones stay on disk; a small result (the build's
pointer to the rows its worker already wrote) comes back through Spark.

An exception that ``fn`` raises on an executor comes back as the same exception (a
``ContractError`` keeps its problems; the executor's traceback is added as a note). A task that
Spark fails (its Python worker killed, the executor lost beyond Spark's retries) raises
:class:`SparkWorkerError` naming the item. Either way the jobs still running are cancelled; with
a spill folder, the map also waits for their tasks (a cancelled task's Python worker runs on,
``jobs.task_roll``), so that none runs on once it returns (nor after the caller stops early).

The items and ``fn`` must pickle (module-level functions, plain data), and the files they name
(the source's parts, the BTYD spool beside the output) must be readable by the executors at the
same paths: one machine, or a shared file system. A single item runs in this process, as in
``PartPool`` (a source of one part is built by the driver's scan that read it).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import pickle
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from features.parallel import QUEUED, WorkerError
from features.scratch import scratch_dir
from jobs.spark_session import SparkJobError, one_line
from jobs.task_roll import Roll

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
SPILL_ABOVE = 1 << 20  # bytes (pickled) beyond which a result is spilled, not sent through Spark


class SparkWorkerError(WorkerError, SparkJobError):
    """Spark failed an item's task (its Python worker or executor died, or it could not run)."""


@dataclass
class _Raised:
    """What ``fn`` raised on an executor (the exception itself when it pickles)."""

    error: BaseException
    trace: str


@dataclass
class _NotRun:
    """A task that found its map stopped (``jobs.task_roll``) and did not run its item."""


@dataclass
class _Spilled:
    """A result the executor wrote to a file (``SparkPool(spill=...)``) instead of sending it."""

    path: Path

    def load(self):
        try:
            with self.path.open("rb") as f:
                return pickle.load(f)
        finally:
            self.path.unlink(missing_ok=True)


class SparkPool:
    """``PartPool.map`` on the executors of a Spark session (``workers``: ``in_flight`` or the
    session's cores; ``workers + QUEUED`` jobs are submitted at a time).

    ``spill``: a folder that the executors and this process both see, in which each task writes
    its result for this process to read (and delete) instead of sending it through Spark: a
    part's rows (118 MB at 100k customers) would cross the JVM as several copies, and a JVM heap
    too small for them fails in a thread that Spark does not watch, so the job hangs. Each map
    keeps its tasks' roll there (``jobs.task_roll``), and its spilled results in the roll's
    folder: a map that ends waits for the tasks still running, and removes what it did not take."""

    def __init__(self, session, in_flight: int | None = None, spill: Path | None = None):
        self._sc = session.sparkContext
        self.workers = max(1, int(in_flight or self._sc.defaultParallelism))
        self.spill = spill

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            names: list[str] | None = None) -> Iterator[R]:
        """``fn(item)`` on the executors, yielded in the items' order, ``workers + QUEUED``
        submitted at a time. A failure cancels the jobs still running and is raised here."""
        items = list(items)
        if len(items) <= 1:
            yield from map(fn, items)
            return
        group = f"churn-pool-{uuid.uuid4().hex[:12]}"
        stopping = threading.Event()  # a thread not yet in runJob starts no job after a failure
        roll = Roll.open(self.spill, group) if self.spill is not None else None
        threads = cf.ThreadPoolExecutor(self.workers + QUEUED, thread_name_prefix="spark-pool")
        pending: deque[cf.Future] = deque()
        ok = False

        def submit(i: int) -> None:
            name = names[i] if names else f"item {i}"
            pending.append(threads.submit(self._run, group, stopping, _TaskFn(fn, roll),
                                          items[i], name))

        try:
            nxt = 0
            while nxt < len(items) or pending:
                # as ``PartPool``: a job per core and one more queued (Spark starts it when a
                # core is free), so an executor that is done never waits for the caller
                while nxt < len(items) and len(pending) < self.workers + QUEUED:
                    submit(nxt)
                    nxt += 1
                result = pending.popleft().result()
                if nxt < len(items):  # the next job is sent before the caller takes this
                    submit(nxt)
                    nxt += 1
                if isinstance(result, _Spilled):
                    result = result.load()
                if isinstance(result, _Raised):
                    result.error.add_note(f"raised on a Spark executor:\n{result.trace}")
                    raise result.error
                if isinstance(result, _NotRun):  # the map is stopped only after its last take
                    raise SparkWorkerError("a Spark task of a running map did not run its item")
                yield result
            ok = True
        finally:
            if not ok:  # a failure, or the caller stopped early: nothing may run on after this
                stopping.set()
                while True:
                    self._sc.cancelJobGroup(group)  # again: a job may have started meanwhile
                    _, running = cf.wait(pending, timeout=0.5)
                    if not running:
                        break
            if roll is not None:  # tasks cancelled while running fn are waited for, and the
                try:  # results not taken (their spilled files) removed with the roll
                    roll.close()
                except OSError as exc:  # never instead of the error that ended the map
                    log.warning("could not close the task roll %s: %s", roll.folder, exc)
            threads.shutdown(wait=True)

    def close(self) -> None:
        """Nothing to end: the session belongs to the caller."""

    def _run(self, group: str, stopping: threading.Event, task: _TaskFn, item: T,
             name: str) -> R | _Raised | None:
        """One item as one Spark job (in a driver thread: its job group is the thread's); none
        once the map is stopping."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        sc = self._sc
        sc.setJobGroup(group, f"churn: {name}", interruptOnCancel=True)
        if stopping.is_set():
            return None
        try:
            rdd = sc.parallelize([item], 1)
            return sc.runJob(rdd, task, [0])[0]
        except (Py4JError, PySparkException) as exc:
            raise SparkWorkerError(f"the Spark task of {name} failed: {one_line(exc)}") from exc


class _TaskFn:
    """The task: ``fn`` over the partition's one item, what it raises returned as ``_Raised``;
    with a roll, only while the map is not stopped (else nothing: the map no longer wants it)."""

    def __init__(self, fn: Callable, roll: Roll | None = None):
        self.fn, self.roll = fn, roll

    def __call__(self, iterator) -> list:
        if self.roll is None:
            return self._results(iterator)
        with self.roll.attend() as on:
            return self._results(iterator) if on else [_NotRun()]

    def _results(self, iterator) -> list:
        from features.parallel import _run
        from features.progress import set_quiet

        set_quiet(True)  # the driver draws the bar over the parts
        out = []
        for item in iterator:
            try:
                out.append(_run(self.fn, item))  # fn, then the freed memory given back
            except BaseException as exc:  # noqa: BLE001 - sent to the driver, raised there
                out.append(_raised(exc))
        if self.roll is not None:  # spilled in the map's roll: removed with it if not taken
            out = [_spill(r, self.roll.folder) for r in out]
        return out


def _spill(result, folder: Path):
    """``result`` written to a file in ``folder`` (``_Spilled``); a small one (a pointer to the
    rows a worker already wrote) is sent back as it is: a file for it is a second file step for a
    few bytes. Pickled straight into the file once past ``SPILL_ABOVE`` (no copy in memory)."""
    # not ``features.io.write_atomic``: whether there is a file at all is known only once the
    # result is pickled (``_Sink``), and a small one never touches the disk
    sink = _Sink(folder / f"{uuid.uuid4().hex}.tmp")
    try:
        with sink:
            pickle.Pickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(result)
    except BaseException:
        sink.path.unlink(missing_ok=True)
        raise
    if sink.file is None:
        return result
    path = sink.path.with_suffix(".pkl")
    sink.path.rename(path)  # whole, or not there
    return _Spilled(path)


class _Sink:
    """Bytes kept in memory up to ``SPILL_ABOVE``, then everything in a file at ``path``."""

    def __init__(self, path: Path):
        self.path, self.file, self._held, self._size = path, None, [], 0

    def write(self, data) -> int:  # bytes, or a buffer (``PickleBuffer``: an array's data)
        if self.file is None:
            size = memoryview(data).nbytes
            self._size += size
            if self._size <= SPILL_ABOVE:
                self._held.append(bytes(data))
                return size
            self.file = self.path.open("wb")
            for held in self._held:
                self.file.write(held)
            self._held = []
        return self.file.write(data)

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


def _raised(exc: BaseException) -> _Raised:
    trace = "".join(traceback.format_exception(exc)).rstrip()
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception that does not travel: its text does
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return _Raised(exc, trace)


@contextlib.contextmanager
def spark_pool(session, in_flight: int | None = None,
               spill_beside: Path | None = None) -> Iterator[SparkPool]:
    """A :class:`SparkPool`; with ``spill_beside``, its results spilled in a hidden temporary
    folder in that folder, removed when the block ends (also on failure)."""
    with contextlib.ExitStack() as stack:
        spill = None
        if spill_beside is not None:
            Path(spill_beside).mkdir(parents=True, exist_ok=True)
            # absolute: the executors resolve it in working folders of their own
            spill = Path(stack.enter_context(scratch_dir(Path(spill_beside).absolute())))
        pool = SparkPool(session, in_flight, spill)
        try:
            yield pool
        finally:
            pool.close()

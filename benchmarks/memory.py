"""Peak resident memory of this process, and of a process tree sampled while a body runs.

``/proc/self/status`` VmHWM is the high-water mark of the current address space, so a stage run
with ``subprocess`` from a large parent reports its own peak. ``getrusage().ru_maxrss`` does not:
on Linux it survives ``fork`` + ``exec`` and reports the parent's size at the fork when that is
larger (this made every batch stage read 2.14 GB in an earlier run).
"""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class TreePeak:
    peak_mb: float = 0.0  # summed resident sets: pages forked workers share count once each
    pss_peak_mb: float = 0.0  # summed proportional sets: a shared page split among its sharers
    # with ``roles``: what each process held at the resident peak, [RSS, PSS] MB by role
    held_mb: dict[str, list[list[int]]] = field(default_factory=dict)


@contextlib.contextmanager
def tree_peak(interval: float = 0.25, *, include_self: bool = False,
              roles: Callable[[list], dict[int, str]] | None = None,
              pss_each_sample: bool = True):
    """The peak summed resident memory of this process's children and their descendants
    (sampled every ``interval`` s while the body runs): a stage run as a subprocess with the
    processes it starts, such as Spark's JVM and Python workers, whose memory VmHWM misses. The
    resident sum counts a page that forked workers share once per worker; the proportional (PSS)
    sum counts it once, which is what the machine actually holds.

    ``include_self``: this process too (e.g. Spark's driver with its JVM and workers).
    ``roles``: the per-process hook: given the processes sampled, a name for each pid
    (``{pid: "jvm", ...}``); the result's ``held_mb`` then says what each held at the peak.
    ``pss_each_sample=False``: read the resident sets only (cheap) and the proportional ones
    (``smaps_rollup``, costly on a JVM's many mappings) only when they reach a new peak, for a
    sampler that runs inside the measured process; ``pss_peak_mb`` is then the PSS at those
    moments."""
    import psutil

    me, result, stop = psutil.Process(), TreePeak(), threading.Event()

    def sample() -> None:
        while not stop.is_set():
            procs = [*([me] if include_self else []), *me.children(recursive=True)]
            if pss_each_sample or _resident_mb(procs) > result.peak_mb:
                _measure(procs, result, roles)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


def _resident_mb(procs: list) -> float:
    import psutil

    rss = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss
    return rss / 2**20


def _measure(procs: list, result: TreePeak, roles: Callable[[list], dict[int, str]] | None) -> None:
    """One full sample (RSS and PSS of each process) folded into ``result``."""
    import psutil

    rss = pss = 0
    held: dict[str, list[list[int]]] = {}
    named = roles(procs) if roles is not None else {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            full = p.memory_full_info()  # smaps_rollup: PSS beside RSS
            p_pss = getattr(full, "pss", full.rss)
            rss, pss = rss + full.rss, pss + p_pss
            if roles is not None:
                held.setdefault(named.get(p.pid, "other"), []).append(
                    [round(full.rss / 2**20), round(p_pss / 2**20)])
    if roles is not None and rss / 2**20 >= result.peak_mb:
        result.held_mb = held
    result.peak_mb = max(result.peak_mb, rss / 2**20)
    result.pss_peak_mb = max(result.pss_peak_mb, pss / 2**20)

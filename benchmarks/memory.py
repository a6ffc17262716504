"""Peak resident memory of this process.

``/proc/self/status`` VmHWM is the high-water mark of the current address space, so a stage run
with ``subprocess`` from a large parent reports its own peak. ``getrusage().ru_maxrss`` does not:
on Linux it survives ``fork`` + ``exec`` and reports the parent's size at the fork when that is
larger (this made every batch stage read 2.14 GB in an earlier run).
"""

from __future__ import annotations

import contextlib
import resource
import threading
from dataclasses import dataclass
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


@contextlib.contextmanager
def tree_peak(interval: float = 0.25):
    """The peak summed resident memory of this process's children and their descendants
    (sampled every ``interval`` s while the body runs): a stage run as a subprocess with the
    processes it starts, such as Spark's JVM and Python workers, whose memory VmHWM misses. The
    resident sum counts a page that forked workers share once per worker; the proportional (PSS)
    sum counts it once, which is what the machine actually holds."""
    import psutil

    me, result, stop = psutil.Process(), TreePeak(), threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = pss = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    full = child.memory_full_info()  # smaps_rollup: PSS beside RSS
                    rss += full.rss
                    pss += getattr(full, "pss", full.rss)
            result.peak_mb = max(result.peak_mb, rss / 2**20)
            result.pss_peak_mb = max(result.pss_peak_mb, pss / 2**20)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()

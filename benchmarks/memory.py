"""Peak resident memory of this process.

``/proc/self/status`` VmHWM is the high-water mark of the current address space, so a stage run
with ``subprocess`` from a large parent reports its own peak. ``getrusage().ru_maxrss`` does not:
on Linux it survives ``fork`` + ``exec`` and reports the parent's size at the fork when that is
larger (this made every batch stage read 2.14 GB in an earlier run).
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

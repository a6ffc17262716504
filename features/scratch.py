"""The feature build's scratch folders: hidden temporary folders beside its output (not in
``TMPDIR``, which may be memory), named after the process that owns them.

A build removes its folders when it ends, whether it succeeds or fails; a build that is killed
(SIGKILL, out of memory, power) cannot, so each new one clears the stale folders in the folder it
works in: those whose owner, on this machine, is no longer running, and, of other owners, those
untouched for ``STALE_AFTER`` (a folder of another machine sharing the disk, or one named before
the owner was recorded). "This machine" is the host name, the boot and the process-id namespace
together (a container sharing the host's name and disk has its own process ids): a folder whose
owner may be alive is never removed on the strength of a process id.

A folder is removed by renaming it first, then deleting what it holds: a worker the build gave up
on (a Spark task cancelled after a failure, whose Python process runs on for a while) may still
write into it. Deleted in place, a file written between the listing and the last ``rmdir`` would
keep the folder; renamed, the worker's next file fails (its folder is gone) and nothing comes back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = ".churn-btyd-"  # kept from the first spool's name, so older leftovers are found too
STALE_AFTER = 7 * 86_400  # seconds without a change after which any scratch folder is stale
_OWNED = re.compile(r"^(?P<host>[0-9a-z_-]*)\.(?P<pid>\d+)\.")


class Scratch:
    """A scratch folder (``name``), removed by :meth:`cleanup`, the ``with`` block, or when the
    object is collected; as ``tempfile.TemporaryDirectory``, but removed by :func:`remove`."""

    def __init__(self, parent: str | Path | None = None):
        self.name = tempfile.mkdtemp(prefix=f"{PREFIX}{_host()}.{os.getpid()}.", dir=parent)
        self._finalizer = weakref.finalize(self, remove, self.name)

    def cleanup(self) -> None:
        if self._finalizer.detach() is not None:
            remove(self.name)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc) -> None:
        self.cleanup()


def scratch_dir(parent: str | Path | None = None) -> Scratch:
    """A new scratch folder in ``parent`` (default ``TMPDIR``) named after this process, stale
    ones in ``parent`` cleared first; removed by its ``cleanup`` (or the ``with`` block)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
        clear_stale(parent)
    return Scratch(parent)


def remove(path: str | Path) -> None:
    """Remove a scratch folder and what it holds, even while a late writer still writes there
    (see the module's notes); errors are logged, never raised (the real error is the caller's)."""
    path = Path(path)
    gone = path.with_name(f"{path.name}.gone")  # still ours by name: a killed owner's is cleared
    try:
        path.rename(gone)
    except FileNotFoundError:
        return
    except OSError as exc:  # cannot rename (a file system that refuses): delete it in place
        log.debug("cannot rename %s before removing it (%s)", path, exc)
        gone = path
    for _ in range(3):  # a file whose creation was under way at the rename may still land
        shutil.rmtree(gone, ignore_errors=True)
        if not gone.exists():
            return
    log.warning("could not remove the scratch folder %s; a build here clears it once this "
                "process has ended", gone)


def clear_stale(parent: str | Path) -> list[Path]:
    """Remove the scratch folders in ``parent`` that no live process owns (see the module's
    notes); the folders removed."""
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith(PREFIX) or not path.is_dir() or path.is_symlink():
            continue
        if _stale(path):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
                log.info("removed %s, left by a build that did not finish", path)
    return removed


def _stale(path: Path) -> bool:
    owner = _OWNED.match(path.name[len(PREFIX):])
    if owner is not None and owner["host"] == _host():
        return not _alive(int(owner["pid"]))  # ours: the process id decides, never the age
    try:  # another machine's, or unnamed: not known to be dead, only the age bound clears it
        return time.time() - path.stat().st_mtime > STALE_AFTER
    except OSError:  # gone meanwhile
        return False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _host() -> str:
    """This machine as the owner tag: host name, boot and process-id namespace, hashed."""
    facts = [socket.gethostname()]
    for fact in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            facts.append(Path(fact).read_text().strip() if "boot" in fact
                         else str(os.stat(fact).st_ino))
        except OSError:
            facts.append("")
    return hashlib.sha256("\0".join(facts).encode()).hexdigest()[:16]

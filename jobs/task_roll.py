"""A roll of the tasks that are running a function, kept in a folder that the tasks and the
driver both see, so that the driver can stop them from starting and wait for those that did.

Spark cannot give that promise for Python tasks: a cancelled task's Python worker runs its
function to the end (Spark only closes its socket), after the job has ended for the driver.
``jobs.spark_pool.SparkPool`` uses a roll so that nothing it started still runs once its map
returns.

A task :meth:`Roll.attend`\\ s: it creates its own file in the roll's folder, locks it, and checks
that the file is still reachable by its name; only then does it run its function, and it removes
the file when the function ends. :meth:`Roll.close` renames the folder away first (a task that
checks after that does not run, and one that starts later cannot even create its file), then
waits until every file left in it is unlocked: its task has ended, or its process died (the
system drops a dead process's locks). A task whose check succeeded had locked its file before the
rename, so the driver finds that file and waits for it. The folder should be on a file system with
``flock`` (a local disk; NFS emulates it); on one without, the tasks run unwatched (logged) rather
than fail, and the driver does not wait for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from features.scratch import remove

log = logging.getLogger(__name__)

CLOSE_WAIT = 30.0  # seconds the driver waits for running tasks before it gives up (and says so)


@dataclass(frozen=True)
class Roll:
    folder: Path

    @classmethod
    def open(cls, parent: Path, name: str) -> Roll:
        folder = Path(parent) / f"{name}.roll"
        folder.mkdir()
        return cls(folder)

    @contextlib.contextmanager
    def attend(self) -> Iterator[bool]:
        """In a task: True while the task is on the roll (run the function), False when the roll
        is closed (do not run it)."""
        path = self.folder / f"{uuid.uuid4().hex}.running"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileNotFoundError:
            if not self.folder.parent.is_dir():  # not closed: this process cannot see the folder
                raise FileNotFoundError(
                    f"the Spark pool's folder {self.folder.parent} is not there on this executor "
                    "(it must be an absolute path on storage the driver and every executor "
                    "share)") from None
            yield False  # closed: the folder was renamed away
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # a file system without locks: run, unwatched, not fail
                log.warning("no lock in %s (%s): the driver cannot wait for this task", path, exc)
            try:
                on = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                on = False
            yield on
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # before the lock goes: the driver never sees it unlocked here
            os.close(fd)

    def close(self, timeout: float = CLOSE_WAIT) -> bool:
        """Stop tasks from starting, wait (up to ``timeout``) until none is running, remove the
        folder. False, with a warning, when some still ran at the timeout."""
        closed = self.folder.with_name(f"{self.folder.name}.closed")
        try:
            self.folder.rename(closed)
        except FileNotFoundError:
            return True
        deadline = time.monotonic() + timeout
        try:
            for path in sorted(closed.iterdir()):
                while not _ended(path):
                    if time.monotonic() > deadline:
                        log.warning("tasks still running %.0f s after they were stopped (%s); "
                                    "their files may appear after this", timeout, closed)
                        return False
                    time.sleep(0.05)
            return True
        finally:
            remove(closed)  # the scratch folders' removal: renamed, then deleted


def _ended(path: Path) -> bool:
    """Whether the task of a roll's file has ended (the file gone or unlocked). A shared lock
    on a file opened for reading: NFS grants an exclusive one only on a file opened for writing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:  # no locks on this file system: nothing to wait on
        log.warning("cannot tell whether the task of %s has ended (%s): not waiting for it",
                    path, exc)
        return True
    finally:
        os.close(fd)

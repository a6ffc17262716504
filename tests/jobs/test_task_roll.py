"""The roll of running tasks (``jobs.task_roll``): once it is closed, no task starts its function,
and those that had started have ended (or died)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jobs.task_roll import Roll

ROOT = Path(__file__).resolve().parents[2]


def test_a_task_that_attends_after_the_roll_is_closed_does_not_run(tmp_path):
    roll = Roll.open(tmp_path, "map")
    assert roll.close() is True
    with roll.attend() as on:
        assert on is False
    assert list(tmp_path.iterdir()) == []  # it could not even leave its file


def test_closing_waits_for_a_task_that_is_running(tmp_path):
    roll, started, log = Roll.open(tmp_path, "map"), threading.Event(), []

    def task():
        with roll.attend() as on:
            log.append(on)
            started.set()
            time.sleep(0.5)
            log.append("done")

    worker = threading.Thread(target=task)
    worker.start()
    assert started.wait(10)
    assert roll.close() is True
    assert log == [True, "done"]  # it had ended when close returned
    assert list(tmp_path.iterdir()) == []
    worker.join()


def test_a_task_whose_process_died_does_not_hold_the_close_up(tmp_path):
    roll = Roll.open(tmp_path, "map")
    code = ("import os, signal, sys; from pathlib import Path; from jobs.task_roll import Roll\n"
            "with Roll(Path(sys.argv[1])).attend() as on:\n"
            "    assert on\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    died = subprocess.run([sys.executable, "-c", code, str(roll.folder)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert died.returncode == -9
    assert len(list(roll.folder.iterdir())) == 1  # its file is still there, unlocked
    started = time.monotonic()
    assert roll.close(timeout=20) is True
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_a_task_that_runs_past_the_timeout_is_given_up_on_and_said(tmp_path, caplog):
    roll, started, release = Roll.open(tmp_path, "map"), threading.Event(), threading.Event()

    def task():
        with roll.attend():
            started.set()
            release.wait(10)

    worker = threading.Thread(target=task)
    worker.start()
    assert started.wait(10)
    with caplog.at_level("WARNING", logger="jobs.task_roll"):
        assert roll.close(timeout=0.3) is False
    release.set()
    worker.join()
    assert any("still running" in r.getMessage() for r in caplog.records), caplog.records
    assert list(tmp_path.iterdir()) == []


def test_a_file_system_without_locks_runs_the_task_unwatched_not_failed(tmp_path, monkeypatch,
                                                                         caplog):
    """A folder on a file system that refuses ``flock`` (the real thing cannot run here, so the
    call is made to refuse): the task still runs, says it is unwatched, and close does not hang."""
    import errno
    import fcntl

    def refused(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refused)
    roll = Roll.open(tmp_path, "map")
    with caplog.at_level("WARNING", logger="jobs.task_roll"), roll.attend() as on:
        assert on is True
        assert roll.close(timeout=5) is True
    assert any("no lock" in r.getMessage() for r in caplog.records), caplog.records
    assert list(tmp_path.iterdir()) == []


def test_a_task_that_cannot_see_the_folder_says_so_instead_of_skipping_its_item(tmp_path):
    """An executor that does not see the driver's folder (not shared, or a relative path from
    another working folder) fails naming it; a closed roll (its folder renamed away, the parent
    still there) is the only reason to skip the item."""
    elsewhere = Roll(tmp_path / "not-shared" / "map.roll")
    with pytest.raises(FileNotFoundError, match="share") as err, elsewhere.attend():
        raise AssertionError("the task ran without its roll")
    assert str(tmp_path / "not-shared") in str(err.value)
    (tmp_path / "spill").mkdir()
    roll = Roll.open(tmp_path / "spill", "map")
    assert roll.close() is True
    with roll.attend() as on:
        assert on is False

"""The Spark scoring job's stage (``.{out}.spark.tmp``) is gone when the job ends, and a stage a
killed job left is cleared by the next one (no Spark here: the executors are a stand-in)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from jobs.batch_commit import clean_stale
from jobs.spark_scoring import remove_stage
from jobs.storage import location


class _LateTask(threading.Thread):
    """A task of a failed job that Spark has not stopped yet: it writes a part under the stage
    every 10 ms (making its folders, as Hadoop's writer does) for ``seconds``, or until it has
    written once after finding the stage removed."""

    def __init__(self, stage, seconds: float = 1.0):
        super().__init__(daemon=True)
        self.stage, self.seconds, self.wrote = stage, seconds, threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            removed = self.wrote.is_set() and not self.stage.exists()
            part = self.stage / "_temporary" / "0" / "_temporary" / "attempt_1" / "part-00001"
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(b"rows")
            self.wrote.set()
            if removed:
                return
            time.sleep(0.01)


def _session_running(task: threading.Thread):
    """A Spark context whose status tracker shows one executor running a task while ``task``
    is alive."""
    infos = lambda: [SimpleNamespace(numRunningTasks=int(task.is_alive()))]  # noqa: E731
    return SimpleNamespace(statusTracker=lambda: SimpleNamespace(getExecutorInfos=infos))


def test_the_stage_is_removed_once_the_late_tasks_have_stopped_writing(tmp_path):
    stage = tmp_path / ".scores.parquet.spark.tmp"
    task = _LateTask(stage)
    task.start()
    assert task.wrote.wait(10)
    remove_stage(_session_running(task), location(stage), timeout=30)
    task.join(10)
    assert list(tmp_path.iterdir()) == []  # removed in place at once, the task writes it again


def test_a_stage_left_by_a_killed_job_is_cleared_by_the_next_one(tmp_path):
    """The next job's ``clean_stale`` (either engine) removes it, with the other leftovers; it
    used to stop that job with IsADirectoryError."""
    out = tmp_path / "scores.parquet"
    parts = tmp_path / ".scores.parquet.spark.tmp" / "_temporary" / "0"
    parts.mkdir(parents=True)
    (parts / "part-00000.parquet").write_bytes(b"rows")
    (tmp_path / ".scores.parquet.123.upload.tmp").write_bytes(b"half")
    (tmp_path / "other.parquet").write_bytes(b"kept")
    clean_stale(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.parquet"]


def test_a_spark_that_cannot_answer_does_not_keep_the_stage_or_hide_the_error(tmp_path):
    """The driver's JVM gone (the job failed with it): asking for running tasks fails, and the
    stage is removed at once instead of that failure replacing the job's own error."""
    stage = tmp_path / ".scores.parquet.spark.tmp"
    (stage / "_temporary").mkdir(parents=True)

    def gone():
        raise ConnectionRefusedError("the Java gateway is gone")

    remove_stage(SimpleNamespace(statusTracker=gone), location(stage), timeout=30)
    assert list(tmp_path.iterdir()) == []

"""The pool that runs the feature build's per-part work as Spark jobs (``jobs.spark_pool``):
results in order a window at a time, one job queued beyond the cores, a failure or an early stop
that leaves nothing running or spilled (real local Spark)."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

from tests.xdist_groups import SHARED_GROUPS

# beside tests/jobs/test_spark.py (its worker already holds a local Spark session: one per worker)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(SHARED_GROUPS[0])]


@pytest.fixture(scope="module")
def spark():
    from jobs.spark_features import spark_session

    return spark_session("local[2]")


def _started(folder, item: int, seconds: float) -> int:
    """A task of the pool's tests: notes that it started, waits, notes that it is done, and
    fails for a negative item (``math.sqrt``'s ValueError)."""
    (folder / f"started-{item}").touch()
    time.sleep(seconds)
    (folder / f"started-{item}").rename(folder / f"done-{item}")
    return int(math.sqrt(item)) if item >= 0 else math.sqrt(item)


class _Task:
    """``_started`` for 0.1 s, and for item 0 (or the items of ``slow``) longer, so that the
    later ones finish first."""

    def __init__(self, folder, slow: dict[int, float] | None = None):
        self.folder, self.slow = folder, {0: 1.0} if slow is None else slow

    def __call__(self, item: int):
        return _started(self.folder, item, self.slow.get(item, 0.1))


def _exit(item: int) -> int:
    if item == 2:
        os._exit(1)  # the Python worker dies, as when it is killed or runs out of memory
    return item


def _notes(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_the_spark_pool_gives_results_in_order_a_window_at_a_time(spark, tmp_path):
    from jobs.spark_pool import SparkPool

    notes, spill = tmp_path / "notes", tmp_path / "spill"
    notes.mkdir()
    spill.mkdir()
    pool = SparkPool(spark, in_flight=2, spill=spill)  # results through files, not the JVM
    results = pool.map(_Task(notes), [0, 1, 4, 9, 16, 25], [f"part {i}" for i in range(6)])
    assert next(results) == 0  # the slowest item first, whatever finished before it
    # at most 4 sent so far: one per core, one queued, and the next sent as the first came back
    assert _notes(notes) <= {f"{s}-{i}" for s in ("started", "done") for i in (0, 1, 4, 9)}
    assert list(results) == [1, 2, 3, 4, 5]
    assert _notes(notes) == {f"done-{i}" for i in (0, 1, 4, 9, 16, 25)}
    assert list(spill.iterdir()) == []  # each result's file read and removed


def test_a_caller_that_stops_early_leaves_nothing_running_or_spilled(spark, tmp_path):
    from jobs.spark_pool import SparkPool

    notes, spill = tmp_path / "notes", tmp_path / "spill"
    notes.mkdir()
    spill.mkdir()
    results = SparkPool(spark, in_flight=2, spill=spill).map(_Task(notes), [0, 1, 4, 9, 16])
    assert next(results) == 0
    results.close()  # the caller stops (an error while writing, Ctrl-C)
    after = _notes(notes)
    assert not any(n.startswith("started-") for n in after), after  # none still running
    assert list(spill.iterdir()) == []  # the unwanted results' files are gone too
    time.sleep(0.5)
    assert _notes(notes) == after  # and no job starts afterwards


def test_a_task_still_running_when_the_caller_stops_has_ended_when_the_map_returns(spark,
                                                                                  tmp_path):
    """Spark ends a cancelled job at once, but the task's Python worker runs its function to the
    end (in CI one wrote a file after its build had failed and removed its folder): the map
    returns only once it has ended, so nothing it started changes anything afterwards."""
    from jobs.spark_pool import SparkPool

    notes, spill = tmp_path / "notes", tmp_path / "spill"
    notes.mkdir()
    spill.mkdir()
    results = SparkPool(spark, in_flight=2, spill=spill).map(_Task(notes, {1: 1.5}), [0, 1, 4])
    assert next(results) == 0
    for _ in range(600):  # item 1 runs beside it
        if "started-1" in _notes(notes):
            break
        time.sleep(0.05)
    results.close()  # while item 1's function still runs
    after = _notes(notes)
    assert "done-1" in after and not any(n.startswith("started-") for n in after), after
    assert list(spill.iterdir()) == []
    time.sleep(0.5)
    assert _notes(notes) == after


def test_the_spark_pool_raises_what_a_task_raised_and_stops(spark, tmp_path):
    from jobs.spark_pool import SparkPool, SparkWorkerError

    pool = SparkPool(spark, in_flight=2)
    with pytest.raises(ValueError, match="math domain error") as err:
        list(pool.map(_Task(tmp_path), [1, -1] + list(range(2, 40))))
    assert any("raised on a Spark executor" in n for n in err.value.__notes__)
    assert len(_notes(tmp_path)) < 10  # the items after the failure were not all run
    with pytest.raises(SparkWorkerError, match="the Spark task of part-2 failed") as err:
        list(pool.map(_exit, [0, 1, 2, 3], [f"part-{i}" for i in range(4)]))
    assert "\n" not in str(err.value)


def test_the_spark_pool_queues_one_job_beyond_its_cores(spark, tmp_path):
    """As ``PartPool``: while the caller holds a result, the cores are not left idle waiting for
    it; the job after the running ones was sent, and starts as soon as a core is free."""
    from jobs.spark_pool import SparkPool

    notes, spill = tmp_path / "notes", tmp_path / "spill"
    notes.mkdir()
    spill.mkdir()
    results = SparkPool(spark, in_flight=2, spill=spill).map(_Task(notes), [0, 1, 4, 9, 16])
    assert next(results) == 0  # the slowest item; the caller now holds it
    for _ in range(600):  # item 4 runs on the core item 1 freed, without a further ``next``
        if "done-4" in _notes(notes):
            break
        time.sleep(0.1)
    assert "done-4" in _notes(notes), _notes(notes)
    assert "started-16" not in _notes(notes) and "done-16" not in _notes(notes), \
        "more than one job queued beyond the cores"
    assert list(results) == [1, 2, 3, 4]
    assert list(spill.iterdir()) == []


def test_only_a_large_result_is_spilled_to_a_file(tmp_path):
    """A small result (the build's pointer to the rows its worker wrote) comes back as it is,
    not through a second file; a large one is written to the spill folder and read back once."""
    from jobs.spark_pool import SPILL_ABOVE, _spill, _Spilled

    small = {"name": "part-00001", "handoff": str(tmp_path / "rows.arrow")}
    assert _spill(small, tmp_path) == small
    assert list(tmp_path.iterdir()) == []
    large = bytes(range(256)) * (SPILL_ABOVE // 256 + 1)
    spilled = _spill(large, tmp_path)
    assert isinstance(spilled, _Spilled)
    assert [p.suffix for p in tmp_path.iterdir()] == [".pkl"]
    assert spilled.load() == large
    assert list(tmp_path.iterdir()) == []
    summary = {"frequency": np.arange(SPILL_ABOVE // 8 + 1, dtype=np.float64)}  # a glance's
    spilled = _spill(summary, tmp_path)  # arrays' data reach the file as buffers, not bytes
    assert isinstance(spilled, _Spilled)
    np.testing.assert_array_equal(spilled.load()["frequency"], summary["frequency"])
    few = {"frequency": np.arange(10, dtype=np.float64)}
    np.testing.assert_array_equal(_spill(few, tmp_path)["frequency"], few["frequency"])
    assert list(tmp_path.iterdir()) == []

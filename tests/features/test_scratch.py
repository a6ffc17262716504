"""The build's scratch folders: a killed build's are cleared by the next build in that folder,
never those of a build still running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from features import scratch
from features.config import FeatureConfig, LabelConfig
from features.sample import SampleSpec, write_partitioned
from features.stream import build_to_parquet


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _folder(parent, name: str):
    path = parent / name
    path.mkdir()
    (path / "cutoff0-frequency.f8").write_bytes(b"\0" * 8)
    return path


def test_only_folders_that_no_live_process_owns_are_cleared(tmp_path):
    host = scratch._host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _folder(tmp_path, f"{scratch.PREFIX}{host}.{_dead_pid()}.abc")
        running = _folder(tmp_path, f"{scratch.PREFIX}{host}.{live.pid}.abc")
        mine = _folder(tmp_path, f"{scratch.PREFIX}{host}.{os.getpid()}.abc")
        elsewhere = _folder(tmp_path, f"{scratch.PREFIX}otherhost.{_dead_pid()}.abc")
        unnamed = _folder(tmp_path, f"{scratch.PREFIX}k3j2l1")  # named before owners were
        old = _folder(tmp_path, f"{scratch.PREFIX}otherhost.1.abc")
        week_ago = time.time() - scratch.STALE_AFTER - 60
        os.utime(old, (week_ago, week_ago))
        running_old = _folder(tmp_path, f"{scratch.PREFIX}{host}.{live.pid}.old")
        os.utime(running_old, (week_ago, week_ago))  # a live owner's folder: kept at any age
        user_data = _folder(tmp_path, "churn-btyd-notes")  # not hidden: not ours
        removed = scratch.clear_stale(tmp_path)
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert sorted(removed) == sorted([dead, old])
    assert not dead.exists() and not old.exists()
    for kept in (running, running_old, mine, elsewhere, unnamed, user_data):
        assert (kept / "cutoff0-frequency.f8").exists(), f"{kept.name} removed"


def _killed_build_leaves_a_folder(out) -> list:
    """A process that makes its scratch folder in ``out``, writes to it and is SIGKILLed."""
    code = ("import os, signal, pathlib; from features.scratch import scratch_dir; "
            f"d = scratch_dir({str(out)!r}); (pathlib.Path(d.name) / 'x.f8').write_bytes(b'1'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    env = {**os.environ, "PYTHONPATH": str(Path(scratch.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    return list(out.iterdir())


def test_a_build_clears_what_a_killed_build_left_and_leaves_nothing_itself(tmp_path):
    write_partitioned(SampleSpec(customers=400, months=13, seed=3, block=200), tmp_path / "crm")
    out = tmp_path / "out"
    out.mkdir()
    left = _killed_build_leaves_a_folder(out)
    assert len(left) == 1 and left[0].name.startswith(scratch.PREFIX)
    left = left[0]
    build_to_parquet(tmp_path / "crm", [pd.Timestamp("2024-10-01")], FeatureConfig(),
                     LabelConfig(), out / "f.parquet", workers=2)
    assert not left.exists(), "the killed build's spool is still there"
    assert [p.name for p in out.iterdir()] == ["f.parquet"]


def test_the_owner_tag_tells_a_container_sharing_the_host_name_apart(monkeypatch):
    """The tag hashes the host name, the boot and the process-id namespace: another namespace
    (a container with the host's name) is another machine, whose folders only age clears."""
    here = scratch._host()
    real_stat = os.stat

    def other_namespace(path, *a, **k):
        st = real_stat(path, *a, **k)
        if str(path) == "/proc/self/ns/pid":
            return os.stat_result((st.st_mode, st.st_ino + 1, *tuple(st)[2:]))
        return st

    monkeypatch.setattr(scratch.os, "stat", other_namespace)
    assert scratch._host() != here and len(here) == 16


def _late_writer(folder: Path, written: list, stop: threading.Event) -> None:
    """A worker the build gave up on (a cancelled Spark task): it goes on writing files into the
    scratch folder, as fast as it can, until its folder is gone."""
    i = 0
    while not stop.is_set():
        try:
            (folder / f"{i:06d}.arrow").write_bytes(b"x")
        except FileNotFoundError:  # the folder is gone: what a late task meets
            return
        written.append(i)
        i += 1


@pytest.mark.parametrize("attempt", range(5))
def test_a_folder_still_written_to_is_removed_whole(tmp_path, attempt):
    """Removing a folder in place races with a writer (a file made between the listing and the
    last rmdir keeps it); the scratch folder goes whole, and the writer cannot bring it back."""
    folder = scratch.scratch_dir(tmp_path)
    written, stop = [], threading.Event()
    writer = threading.Thread(target=_late_writer, args=(Path(folder.name), written, stop))
    writer.start()
    try:
        while len(written) < 200:  # the writer is under way
            time.sleep(0.001)
        folder.cleanup()
        time.sleep(0.05)  # the writer has tried again since
        assert list(tmp_path.iterdir()) == [], "the folder or a part of it is still there"
        assert not writer.is_alive() or not Path(folder.name).exists()
    finally:
        stop.set()
        writer.join()
    assert list(tmp_path.iterdir()) == []

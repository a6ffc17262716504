"""``write_atomic``, the one way to write a file that must be whole or not there: the permissions
a plain ``open`` gives (without touching the process-wide umask), nothing left behind on failure,
the temporary file beside the final one."""

from __future__ import annotations

import os
import stat

import pytest

import features.io as io_module
from features.io import write_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_written_file_has_the_permissions_a_plain_open_gives(tmp_path, umask_027):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    out = write_atomic(tmp_path / "out.txt", lambda tmp: tmp.write_text("hello"))
    assert out.read_text() == "hello"
    assert _mode(out) == _mode(plain) == 0o640, f"mode {oct(_mode(out))}, plain {oct(_mode(plain))}"


def test_a_replaced_file_takes_the_umask_not_the_old_files_mode(tmp_path, umask_027):
    out = tmp_path / "out.txt"
    out.write_text("old")
    out.chmod(0o600)
    write_atomic(out, lambda tmp: tmp.write_text("new"))
    assert (out.read_text(), _mode(out)) == ("new", 0o640)


def test_the_umask_is_neither_read_nor_changed(tmp_path, monkeypatch):
    """``os.umask`` sets the mask of the whole process: a thread that creates a file while another
    reads the mask by setting it to 0 gets a world-writable file."""
    def no_umask(mask):
        raise AssertionError(f"os.umask({mask:#o}) called")

    monkeypatch.setattr(io_module.os, "umask", no_umask)
    assert write_atomic(tmp_path / "out.txt", lambda tmp: tmp.write_text("x")).read_text() == "x"


def test_the_temporary_file_is_beside_the_final_one_and_hidden(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_text("x")

    write_atomic(tmp_path / "out.txt", write)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".out.txt."), seen
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        write_atomic(tmp_path / "out.txt", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("previous")

    def broken(tmp):
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space"):
        write_atomic(out, broken)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and out.read_text() == "previous"


def test_the_folder_is_made_unless_told_not_to(tmp_path):
    made = write_atomic(tmp_path / "a" / "b" / "out.txt", lambda tmp: tmp.write_text("x"))
    assert made.read_text() == "x"
    gone = tmp_path / "scratch"
    with pytest.raises(FileNotFoundError):
        write_atomic(gone / "out.txt", lambda tmp: tmp.write_text("x"), mkdir=False)
    assert not gone.exists(), "a removed scratch folder was made again"

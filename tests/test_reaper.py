"""Servers the fixtures start die with pytest, also when pytest is killed from outside: a child
pytest starts the real `mlflow server` (session fixture; in one case) and two process trees through the two
server helpers (tests/conftest.py's ``running_server``, tests/serving/conftest.py's ``Server``),
each with a worker that ignores SIGTERM and one that left the process group (as BentoML's circus
workers do); the child pytest is then killed and every process it had below it must be gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.reaper import descendants

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

TREE = """
    import http.server, os, subprocess, sys
    port, pids = int(sys.argv[1]), sys.argv[2]
    stubborn = [sys.executable, "-c", "import signal, time; "
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(900)"]
    in_group = subprocess.Popen(stubborn)
    own_session = subprocess.Popen(stubborn, start_new_session=True)
    with open(pids, "a") as f:
        f.write(f"{os.getpid()} {in_group.pid} {own_session.pid}\\n")
    http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""

HOLD = """
    import os, sys, time
    from pathlib import Path
    from tests.conftest import running_server
    from tests.ports import free_port
    from tests.serving.conftest import Server

    HERE = Path(__file__).parent

    def test_hold(request, tmp_path):
        mlflow = request.getfixturevalue("mlflow_server") if os.environ.get("HOLD_MLFLOW") else ""
        tree = [sys.executable, str(HERE / "tree.py")]
        one, two = free_port(), free_port()
        with running_server([*tree, str(one), str(HERE / "pids")], "/", one, tmp_path / "one.log"):
            server = Server([*tree, str(two), str(HERE / "pids")], two, tmp_path / "two.log",
                            env=dict(os.environ), ready_path="/")
            server.start(timeout=60)
            (HERE / "ready").write_text(mlflow)
            time.sleep(900)
"""


def _started(pid: int) -> str | None:
    """The process's start time (tells it from a later process given the same pid), None once it
    is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:150]
    except OSError:
        return "?"


@pytest.mark.parametrize("sig,mlflow", [(signal.SIGKILL, True), (signal.SIGTERM, False)],
                         ids=["SIGKILL, mlflow server too", "SIGTERM"])
def test_no_server_outlives_a_killed_pytest(tmp_path, sig, mlflow):
    (tmp_path / "tree.py").write_text(textwrap.dedent(TREE))
    (tmp_path / "test_hold.py").write_text(textwrap.dedent(HOLD))
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true",
           "HOLD_MLFLOW": "1" if mlflow else ""}
    log = open(tmp_path / "pytest.log", "w")  # noqa: SIM115 - closed below
    child = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-p", "tests.conftest", "test_hold.py"], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tree: dict[int, str | None] = {}
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "ready").exists():
            assert child.poll() is None, (tmp_path / "pytest.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the child pytest did not start its servers"
            time.sleep(0.2)
        tree = {pid: _started(pid) for pid in descendants(child.pid)}
        ours = [int(p) for p in (tmp_path / "pids").read_text().split()]
        assert set(ours) <= set(tree), (ours, sorted(tree))
        if mlflow:  # the real server and its uvicorn child
            assert sum("mlflow" in _command(pid) for pid in tree) >= 2, [_command(p) for p in tree]
        os.kill(child.pid, sig)
        child.wait(timeout=30)
        deadline = time.monotonic() + 40
        while (alive := [p for p, t in tree.items() if t and _started(p) == t]) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive, "still running after pytest was killed:\n" + "\n".join(
            f"{p} {_command(p)}" for p in alive)
    finally:
        log.close()
        for pid, started in tree.items():  # a failing run must not leak either
            if started and _started(pid) == started:
                os.kill(pid, signal.SIGKILL)
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()

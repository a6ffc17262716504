"""`make test` runs on two pytest-xdist workers with `--dist loadgroup`: every module with a test
that uses the session's mlflow server (the shared training) runs on ONE worker, so that server and
the training are set up once; the other modules are units of their own. A child pytest on two
workers runs modules whose tests use a stand-in `mlflow_server` that records where it was set up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

CONFTEST = """
    import os
    from pathlib import Path

    import pytest

    HERE = Path(__file__).parent

    def record(line):
        with open(HERE / "ran.txt", "a") as f:
            f.write(f"{line} {os.environ['PYTEST_XDIST_WORKER']}\\n")

    @pytest.fixture(scope="session")
    def mlflow_server():  # stands in for tests/conftest.py's real server
        record("server-setup -")
        return "http://stand-in"

    @pytest.fixture(autouse=True)
    def where(request):
        record(f"{request.node.module.__name__} {request.node.name}")
"""

SHARED = """
    import pytest

    @pytest.mark.parametrize("i", range(12))
    def test_uses_the_server(i, mlflow_server):
        assert mlflow_server

    @pytest.mark.parametrize("i", range(4))
    def test_beside_it(i):
        pass
"""

PLAIN = """
    import time

    import pytest

    @pytest.mark.parametrize("i", range(6))
    def test_plain(i):
        time.sleep(0.05)
"""


def test_modules_that_use_the_session_server_run_on_one_worker(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    for name in ("test_shared_a", "test_shared_b"):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(SHARED))
    for name in ("test_plain_c", "test_plain_d", "test_plain_e"):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLAIN))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(REPO), MLFLOW_DISABLE_TELEMETRY="true")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "tests.xdist_groups", "-n", "2", "--dist", "loadgroup"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ran = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    setups = [worker for what, _, worker in ran if what == "server-setup"]
    assert len(setups) == 1, f"the session server was set up on {setups}"
    shared = {worker for module, _, worker in ran if module.startswith("test_shared")}
    assert shared == set(setups), f"the server's modules ran on {shared}, it was set up on {setups}"
    for module in ("test_plain_c", "test_plain_d", "test_plain_e"):
        workers = {worker for m, _, worker in ran if m == module}
        assert len(workers) == 1, f"{module} was split across {workers}"
    assert len(ran) == 1 + 2 * 16 + 3 * 6, ran

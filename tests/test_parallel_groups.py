"""`make test` runs on two pytest-xdist workers with `--dist loadgroup`: the modules with a test that
uses the session's mlflow server (the shared training) form two groups, each run whole by one
worker, so each worker sets that server and the training up once; the other modules are units of
their own. A child pytest on two workers runs modules whose tests use a stand-in `mlflow_server`
that records where it was set up."""

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

    import tests.xdist_groups as groups

    HERE = Path(__file__).parent
    groups.SECOND_GROUP.add("test_shared_b.py")  # as tests/serving/... are in the real suite

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


def _child_env(*extra_paths: Path) -> dict[str, str]:
    """A child pytest's environment: none of this run's xdist variables, this checkout first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    env.update(PYTHONPATH=os.pathsep.join(map(str, [REPO, *extra_paths])),
               MLFLOW_DISABLE_TELEMETRY="true")
    return env


def test_each_group_of_session_modules_runs_on_one_worker_and_sets_the_server_up_once(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    for name in ("test_shared_a", "test_shared_b"):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(SHARED))
    for name in ("test_plain_c", "test_plain_d", "test_plain_e"):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLAIN))
    env = _child_env()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "tests.xdist_groups", "-n", "2", "--dist", "loadgroup"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ran = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    setups = sorted(worker for what, _, worker in ran if what == "server-setup")
    assert setups == ["gw0", "gw1"], f"the session server was set up on {setups}"
    shared = {module: {worker for m, _, worker in ran if m == module}
              for module in ("test_shared_a", "test_shared_b")}
    assert all(len(w) == 1 for w in shared.values()), f"a group was split: {shared}"
    assert shared["test_shared_a"] != shared["test_shared_b"], f"both groups on one: {shared}"
    for module in ("test_plain_c", "test_plain_d", "test_plain_e"):
        workers = {worker for m, _, worker in ran if m == module}
        assert len(workers) == 1, f"{module} was split across {workers}"
    assert len(ran) == 2 + 2 * 16 + 3 * 6, ran


PROBE = """
    from tests.xdist_groups import SHARED_FIXTURES

    def pytest_collection_finish(session):
        shared = sorted({item.nodeid.split("::")[0] for item in session.items
                         if SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))})
        print("SHARED", *shared)
"""


def test_the_second_groups_modules_exist_and_use_the_session(tmp_path):
    """A module listed in the second group that no longer uses the session's servers would
    silently make that worker set them up for nothing: collect them and look."""
    from tests.xdist_groups import SECOND_GROUP

    (tmp_path / "shared_probe.py").write_text(textwrap.dedent(PROBE))
    env = _child_env(tmp_path)
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-p", "shared_probe", *sorted(SECOND_GROUP)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("SHARED")]
    assert set(line.split()[1:]) == SECOND_GROUP

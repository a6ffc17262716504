"""Real processes for the serving tests: `churn serve` running THIS checkout's code, and an
`mlflow server` that a test can stop and start again on the same port and backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import API_KEYS, MLFLOW_SERVER_ENV, register_copy
from tests.ports import free_port
from tests.reaper import reaped

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def worktree_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's packages: the venv's
    console scripts would otherwise import the editable install's (another checkout's) code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update({"PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [
        os.environ.get("PYTHONPATH")])]), "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true"})
    env.update(extra or {})
    return env


@pytest.fixture(scope="session", autouse=True)
def subprocesses_run_this_checkout():
    code = ("import churn, features, scoring, serving; "
            "print('\\n'.join(m.__file__ for m in (churn, features, scoring, serving)))")
    out = subprocess.run([sys.executable, "-c", code], env=worktree_env(), cwd="/",
                         capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(REPO)) for path in out), out


def http(url: str, path: str, body: dict | None = None, key: str | None = API_KEYS[0],
         method: str | None = None, timeout: float = 15) -> tuple[int, dict, dict]:
    """(status, JSON body or {"text": ...}, headers) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if data else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url + path, data=data, headers=headers,
                                 method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, hdrs = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), dict(e.headers)
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        parsed = {"text": raw.decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"value": parsed}, hdrs


def score_ids(url: str, ids: list[str], key: str = API_KEYS[0]) -> tuple[int, dict, dict]:
    return http(url, "/score", {"customers": [{"customer_id": i} for i in ids]}, key=key)


def wait_until(check, timeout: float, step: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"{what} not met within {timeout:.0f} s")


class Server:
    """A server process of our own (its own process group, under tests/reaper.py so that nothing
    of it outlives pytest), started and stopped on demand."""

    def __init__(self, cmd: list[str], port: int, log_path: Path, env: dict[str, str],
                 cwd: Path | None = None, ready_path: str = "/readyz"):
        self.cmd, self.port, self.log_path, self.env, self.cwd = cmd, port, log_path, env, cwd
        self.ready_path, self.proc = ready_path, None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, wait: bool = True, timeout: float = 180) -> float:
        """Start; with ``wait``, until ``ready_path`` answers 200. Returns the seconds taken."""
        started = time.monotonic()
        log = open(self.log_path, "a")  # noqa: SIM115 - the child holds it
        # reaped: it and what it starts (circus's workers leave the group) die with pytest
        self.proc = subprocess.Popen(reaped(self.cmd), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.cwd, env=self.env, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return time.monotonic() - started

    def wait_ready(self, timeout: float = 180, path: str | None = None) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[0]} exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            with urllib.request.urlopen(self.url + (path or self.ready_path), timeout=3) as r:
                return r.status == 200

        wait_until(ready, timeout, step=0.3, what=f"{self.url}{path or self.ready_path}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the whole group, then wait until every process in it is gone (the port is
        free again); SIGKILL what is left after ``timeout``."""
        if self.proc is None:
            return
        group = self.proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.proc.poll()  # reap our child once it exits
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                continue  # still there: SIGKILL
            break
        self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def churn_serve(root: Path, env: dict[str, str], workers: int = 1, name: str = "serve",
                args: tuple[str, ...] = ()) -> Server:
    port = free_port()
    cmd = [str(BIN / "churn"), "serve", "--port", str(port), "--workers", str(workers), *args]
    # a BentoML home of its own: every `bentoml serve` empties the metrics folder of its home
    # when it starts, which would blank another server's /metrics
    home = {"BENTOML_HOME": str(root / f"bentoml-{name}-{port}")}
    return Server(cmd, port, root / f"{name}.log", worktree_env({**home, **env}), cwd=root)


def mlflow_server(root: Path, artifacts: Path | None = None) -> Server:
    port = free_port()
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
           "--artifacts-destination", str(artifacts or root / "artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    return Server(cmd, port, root / "mlflow.log", worktree_env(MLFLOW_SERVER_ENV), cwd=root,
                  ready_path="/health")


@pytest.fixture(scope="session")
def registry(tmp_path_factory, served, mlflow_server_root):
    """A real `mlflow server` with a trained champion, for tests that take the registry down
    (each test starts it again if a previous one left it stopped). Its store is a copy of the
    session tracking server's database, taken when first asked for (the served champion: the same
    trained model, version and alias), and it serves that server's artifact folder (the model's
    files, read through this server only), so the sample is not trained again."""
    import sqlite3

    root = tmp_path_factory.mktemp("registry")
    with closing(sqlite3.connect(mlflow_server_root / "mlflow.db")) as live, \
            closing(sqlite3.connect(root / "mlflow.db")) as copy:
        live.backup(copy)  # consistent while the session server runs
    server = mlflow_server(root, artifacts=mlflow_server_root / "artifacts")
    server.start(timeout=120)
    yield {"server": server, "url": server.url, "first_version": champion(server.url)}
    server.stop()


def champion(url: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=url, registry_uri=url)
               .get_model_version_by_alias("churn", "champion").version)


def promote_a_copy(url: str) -> str:
    """Register the champion's model again as a new version and make it the champion (a
    promotion without retraining); returns the new version."""
    from mlflow import MlflowClient

    new = register_copy(url, "churn", champion(url))
    MlflowClient(tracking_uri=url, registry_uri=url).set_registered_model_alias(
        "churn", "champion", new)
    return new

"""A real Spark standalone cluster on 127.0.0.1 for the tests and the benchmark: one master and
N workers started with pyspark's own ``bin/spark-class``, each in its own process group, with its
own work directory, stopped by PID.

    with standalone_cluster(tmp_path, workers=2) as cluster:
        cluster.url        # spark://127.0.0.1:PORT
        cluster.kill_worker(0)  # SIGKILL a worker and the executors it launched

``executor_python(root, project=False)`` writes a launcher for the executors' Python that has the
driver's third-party packages but cannot import this project (``deps=False``: not even those).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.reaper import reaped


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
        """Signal the daemon's process group (the JVM and, for a worker, its executors)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=wait)
        # executors (and their Python workers) share the group: make sure none outlives it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@dataclass
class Cluster:
    root: Path
    master_port: int
    ui_port: int
    master: Daemon | None = None
    workers: list[Daemon] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json", timeout=3) as r:
            return json.loads(r.read())

    def alive_workers(self) -> int:
        return sum(1 for w in self.state().get("workers", []) if w.get("state") == "ALIVE")

    def add_workers(self, n: int = 1, memory: str = "1g", timeout: float = 120.0) -> None:
        """Start ``n`` workers at once and wait until all of them have registered."""
        want = sum(1 for w in self.workers if w.alive()) + n
        started = [self._start_worker(memory) for _ in range(n)]
        _wait(lambda: self.alive_workers() >= want, timeout, started,
              f"{want} worker(s) registered with {self.url}")

    def _start_worker(self, memory: str) -> Daemon:
        i = len(self.workers)
        work = self.root / f"worker-{i}"
        work.mkdir(parents=True, exist_ok=True)
        cmd = [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
               "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port",
               str(free_port()), "--cores", "1", "--memory", memory, "--work-dir", str(work),
               self.url]
        worker = _start(f"worker-{i}", cmd, self.root / f"worker-{i}.log")
        self.workers.append(worker)
        return worker

    def kill_worker(self, i: int) -> None:
        self.workers[i].stop(signal.SIGKILL)

    def stop(self) -> None:
        for daemon in [*self.workers, self.master]:
            if daemon is not None:
                daemon.stop()


def _env() -> dict:
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_MEMORY": "512m"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    return env


def _start(name: str, cmd: list[str], log: Path) -> Daemon:
    out = open(log, "w")  # noqa: SIM115 - the daemon owns it until it exits
    proc = subprocess.Popen(reaped(cmd), stdout=out, stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True)
    out.close()
    return Daemon(name, proc, log)


def _wait(ready, timeout: float, daemons: list[Daemon], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for daemon in daemons:
            if not daemon.alive():
                raise RuntimeError(f"{daemon.name} exited ({daemon.proc.returncode}) before "
                                   f"{what}; log: {daemon.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, ValueError):
            if ready():
                return
        time.sleep(0.5)
    raise TimeoutError(f"not ready within {timeout:.0f} s: {what}; logs in "
                       f"{daemons[0].log.parent}")


@contextlib.contextmanager
def standalone_cluster(root: Path, workers: int = 2, memory: str = "1g", timeout: float = 120.0):
    """A master and ``workers`` workers (1 core, ``memory`` each); everything stopped at exit."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root, free_port(), free_port())
    try:
        cmd = [str(spark_home() / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
               "--host", "127.0.0.1", "--port", str(cluster.master_port), "--webui-port",
               str(cluster.ui_port)]
        cluster.master = _start("master", cmd, root / "master.log")
        _wait(lambda: cluster.state().get("status") == "ALIVE", timeout, [cluster.master],
              f"the master at {cluster.url}")
        cluster.add_workers(workers, memory, timeout)
        yield cluster
    finally:
        cluster.stop()


def executor_python(root: Path, deps: bool = True) -> str:
    """A launcher for the executors' Python: this interpreter without ``site`` (so none of the
    virtualenv's .pth files: an editable install of the project is invisible), with the
    virtualenv's site-packages on the path when ``deps`` (numpy, pandas, lightgbm, ...)."""
    import sys
    import sysconfig

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / ("python-deps-only" if deps else "python-bare")
    extra = sysconfig.get_paths()["purelib"] if deps else ""
    path.write_text("#!/bin/sh\n"
                    + (f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{extra}"; export PYTHONPATH\n'
                       if extra else "")
                    + f'exec "{sys.executable}" -S "$@"\n')
    path.chmod(0o755)
    return str(path)

"""The Spark session the jobs run on, local or a cluster, checked before any work is sent.

One session per process (a SparkContext per JVM): asking for another master or another executor
Python stops the current one first. Before a session is made on a cluster the master's port must
answer within ``connect_timeout``; after, an executor must join within ``executor_timeout``, the
project's code is shipped to the executors (``jobs.spark_ship``) and a small job checks that
every package the tasks import loads there. Each failure is a :class:`SparkJobError` with one line
that says what to fix. ``master=None`` takes the session that ``spark-submit`` or a notebook
(Databricks) already made, and its master.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_CONF = {"spark.sql.session.timeZone": "UTC",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.shuffle.partitions": "8",
                "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": "2g"}
_SESSION = None


class SparkJobError(RuntimeError):
    """The cluster or a Spark job failed; the message is one line."""


@dataclass(frozen=True)
class SparkOptions:
    master: str | None = "local[*]"  # None: the session spark-submit or a notebook made
    conf: tuple[tuple[str, str], ...] = ()  # spark.* settings, e.g. spark.executor.memory
    python: str | None = None  # the executors' Python (default: PYSPARK_PYTHON or this one)
    ship_code: bool = True  # zip features, scoring, jobs and add them to the executors' path
    connect_timeout: float = 10.0  # seconds for the master's port to answer
    executor_timeout: float = 120.0  # seconds for the first executor to join
    buckets: int | None = None  # customer buckets of the feature build (None: by customer count)

    @classmethod
    def of(cls, options: SparkOptions | str | None) -> SparkOptions:
        return options if isinstance(options, SparkOptions) else cls(master=options)


def is_local(master: str | None) -> bool:
    return master is None or master.startswith("local")


def spark_session(options: SparkOptions | str | None = "local[*]"):
    """The process's session for ``options``, made (and checked) when there is none yet."""
    global _SESSION
    options = SparkOptions.of(options)
    python = options.python or os.environ.get("PYSPARK_PYTHON") or sys.executable
    master = _resolve_master(options.master)
    if _SESSION is not None and _usable(_SESSION, master, python):
        return _SESSION
    if master is not None:
        check_master(master, options.connect_timeout)
    if _SESSION is not None:
        log.info("stopping the Spark session on %s", _SESSION.sparkContext.master)
        _SESSION.stop()
        _SESSION = None
    session = _create(options, master, python)
    sc = session.sparkContext
    try:
        if not is_local(sc.master):
            wait_for_executors(sc, options.executor_timeout)
            if options.ship_code:
                from jobs.spark_ship import ship_code

                ship_code(sc)
            check_executors(sc)
    except BaseException:
        session.stop()  # a session that failed its checks is not kept: the next call re-checks
        raise
    _SESSION = session
    return session


def stop_session() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None


def _resolve_master(master: str | None) -> str | None:
    """The master asked for; else a running context's (a notebook), else None under
    spark-submit (its --master decides), else local[*]."""
    if master is not None:
        return master
    from pyspark import SparkContext

    active = SparkContext._active_spark_context
    if active is not None:
        return active.master
    return None if os.environ.get("PYSPARK_GATEWAY_PORT") else "local[*]"


def _usable(session, master: str | None, python: str) -> bool:
    sc = session.sparkContext
    return (sc._jsc is not None and (master is None or sc.master == master)
            and sc.pythonExec == python)


def _create(options: SparkOptions, master: str | None, python: str):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("churn")
    if master is not None:
        builder = builder.master(master)
    for key, value in {**DEFAULT_CONF, **dict(options.conf)}.items():
        builder = builder.config(key, value)
    # the executors' Python is read from the environment when the context starts
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = python
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        with spark_errors(f"starting Spark on {master or 'the spark-submit master'}"):
            session = builder.getOrCreate()
    except SparkJobError as exc:
        if "stopped SparkContext" not in str(exc):
            raise
        # the port answered, but nothing registered the application (Spark retries for ~60 s)
        raise SparkJobError(f"the Spark master {master} did not take the application (Spark gave "
                            f"up registering it): is it a Spark master, of a compatible version?"
                            ) from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    session.sparkContext.setLogLevel("ERROR")
    return session


def check_master(master: str, timeout: float) -> None:
    """A standalone (``spark://h:p[,h2:p2]``) or Kubernetes master must accept a connection."""
    if master.startswith("spark://"):
        hosts = master[len("spark://"):].split(",")
    elif master.startswith("k8s://"):
        url = urlparse(master[len("k8s://"):])
        hosts = [f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}"]
    else:
        return
    problems = []
    for host_port in hosts:
        host, _, port = host_port.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{host_port} ({exc.strerror or exc})" if isinstance(exc, OSError)
                            else f"{host_port} (not host:port)")
    raise SparkJobError(f"cannot reach the Spark master {master}: {', '.join(problems)}; "
                        f"is it running and is the URL right?")


def wait_for_executors(sc, timeout: float) -> None:
    """Wait for the first executor (with dynamic allocation they come with the first job)."""
    if sc.getConf().get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return
    deadline = time.monotonic() + timeout
    while sc._jsc.sc().getExecutorIds().size() == 0:
        if sc._jsc.sc().isStopped():  # e.g. the port answered but no Spark master registered us
            raise SparkJobError(f"the Spark master {sc.master} did not take the application "
                                f"(Spark stopped it); is it a Spark master, of a compatible "
                                f"version?")
        if time.monotonic() > deadline:
            raise SparkJobError(
                f"no executor joined the application on {sc.master} within {timeout:.0f} s: are "
                f"workers registered, with a free core and the executor memory "
                f"({sc.getConf().get('spark.executor.memory', '1g')}) each?")
        time.sleep(0.5)


PROJECT = ("features", "scoring", "jobs")
# What the tasks import (the third-party packages first, so a missing one is named as itself).
REQUIRED = ("numpy", "pandas", "pyarrow", "lightgbm", "numba", "features.build",
            "scoring.scorer", "jobs.spark_scoring", "jobs.spark_features")


def executor_report(sc, tasks: int | None = None) -> list[dict]:
    """From tasks spread over the executors: host, Python, where ``jobs`` came from, and the
    modules of ``REQUIRED`` that fail to import (module -> the missing name or the error)."""
    required = REQUIRED

    def probe(_):  # defined here so it travels by value: it must run before anything imports
        import importlib
        import os as _os
        import socket as _socket
        import sys as _sys

        missing = {}
        for name in required:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                missing[name] = exc.name or str(exc)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                missing[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        jobs = _sys.modules.get("jobs")
        yield {"host": _socket.gethostname(), "pid": _os.getpid(), "python": _sys.executable,
               "jobs_file": getattr(jobs, "__file__", None), "missing": missing}

    n = tasks or max(2, sc.defaultParallelism) * 2
    with spark_errors(f"checking the executors on {sc.master}"):
        return sc.parallelize(range(n), n).mapPartitions(probe).collect()


def check_executors(sc) -> None:
    """Fail with one line when the executors cannot import what the tasks need."""
    reports = executor_report(sc)
    bad = [r for r in reports if r["missing"]]
    if not bad:
        return
    found = {v if " " in v else v.split(".")[0] for r in bad for v in r["missing"].values()}
    project = sorted(found & set(PROJECT))
    what = ", ".join(sorted(found - set(PROJECT))
                     + ([f"{', '.join(project)} (this project)"] if project else []))
    raise SparkJobError(
        f"executors cannot import {what} (Python {bad[0]['python']} on {bad[0]['host']}): install "
        f"the driver's packages in the executors' Python (pip install 'churn-service[spark]'), "
        f"or ship the project (ship_code)")


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)):\s?(.*)$")
_JVM = ("org.", "java.", "py4j.", "scala.")


def one_line(exc: BaseException) -> str:
    """The line of a Spark failure a user needs: the Python exception raised in a task when there
    is one, else the first line of the JVM's message."""
    lines = [ln.strip().lstrip(": ") for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("An error occurred while calling")]
    python = [m for m in (_EXC_LINE.match(ln) for ln in lines)
              if m and not m.group(1).startswith(_JVM)]
    if python:
        m = python[-1]
        line = f"{m.group(1).rsplit('.', 1)[-1]}: {m.group(3)}"
    else:
        line = next((ln for ln in lines if not ln.startswith("at ")), type(exc).__name__)
    return line[:400]


@contextlib.contextmanager
def spark_errors(doing: str):
    """Turn a Spark or Py4J failure inside the block into one :class:`SparkJobError` line."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JError, PySparkException) as exc:
        raise SparkJobError(f"{doing} failed: {one_line(exc)}") from exc

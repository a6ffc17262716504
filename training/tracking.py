"""MLflow: experiments, runs (params, fingerprint, metrics, plots, hold-out), the logged model."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import re
import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from packaging.requirements import Requirement

from scoring.artifact import (
    MODEL_CODE,
    MODEL_PACKAGES,
    SCORER_ARTIFACT,
    UPLIFT_ARTIFACT,
    ChurnPyfunc,
    model_input_frame,  # noqa: F401 - re-exported: callers prepare model input from here
    model_signature,
)
from scoring.model_store import use_tracking
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer

log = logging.getLogger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"  # the one pin list (exact versions)


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server cannot be reached: training stops before it starts."""


def check_tracking(uri: str | None = None) -> str:
    """Point MLflow at the tracking server (bounded timeouts and retries, as the service uses) and
    make sure it answers, so that training fails in seconds, before any data is read or model
    fitted, rather than after. Returns the URI; raises :class:`TrackingUnavailableError`."""
    uri = use_tracking(uri)
    if not uri.startswith(("http://", "https://")):
        return uri  # a local store (SQLite, files): nothing to reach
    try:
        with _quiet_retries():
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as exc:
        raise TrackingUnavailableError(
            f"the MLflow tracking server {uri} is unreachable ({_reason(exc)}); nothing was "
            "done: start it or point MLFLOW_TRACKING_URI at a running one") from exc
    return uri


@contextlib.contextmanager
def _quiet_retries():
    """urllib3 logs a warning per retry; the probe reports the outcome in one line instead."""
    logger = logging.getLogger("urllib3.connectionpool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    if "timed out" in text.lower():
        return "no answer in time"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def read_constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``name==version`` lines of a constraints file: canonical name -> version."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"{path}: {line!r} is not an exact pin (name==version)")
        pins[canonical(name.strip())] = version.strip()
    return pins


def model_requirements(folder: Path, packages=MODEL_PACKAGES,
                       constraints: Path = CONSTRAINTS) -> list[str]:
    """The logged model's requirements: its packages at the versions of constraints.txt, plus a
    constraints file (written in ``folder``; MLflow copies it into the model and its
    requirements.txt says ``-c constraints.txt``) with the pins of everything those packages
    pull in, so the model's environment is the one it was trained in. From an installed copy
    without constraints.txt: the installed versions (which ``pip install -c constraints.txt``
    made the same)."""
    if not constraints.exists():
        log.warning("no %s: the model's requirements are the installed versions", constraints.name)
        return [f"{p}=={importlib.metadata.version(p)}" for p in packages]
    pins = read_constraints(constraints)
    missing = [p for p in packages if canonical(p) not in pins]
    if missing:
        raise ValueError(f"{constraints} has no pin for {', '.join(missing)}")
    needed = sorted(n for n in dependency_closure(packages) if n in pins)
    own = folder / "constraints.txt"
    own.write_text("".join(f"{n}=={pins[n]}\n" for n in needed))
    return [f"{p}=={pins[canonical(p)]}" for p in packages] + [f"-c {own}"]


def dependency_closure(packages) -> set[str]:
    """The distributions ``packages`` need, theirs included, as installed here (extras left
    out, platform markers evaluated); canonical names."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _code_copy(folder: Path) -> list[str]:
    """The model's own code (``MODEL_CODE``), copied without caches, for ``code_paths``."""
    paths = []
    for package in MODEL_CODE:
        source = Path(importlib.import_module(package).__file__).parent
        target = folder / package
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        paths.append(str(target))
    return paths


def log_model(scorer: ChurnScorer, example: pd.DataFrame, model_name: str,
              uplift: UpliftModels | None = None) -> tuple[str, str]:
    """Log the pyfunc (scorer and uplift models inside, its code, pinned requirements, signature
    and input example) and register a version. Returns (model_uri, version); the alias
    ``challenger`` points at it. The model loads where only MLflow and its requirements are
    installed (``pip install -r requirements.txt`` from the model's folder).
    """
    example = model_input_frame(scorer, example.head(5))
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {SCORER_ARTIFACT: str(scorer.save(Path(tmp) / SCORER_ARTIFACT))}
        if uplift is not None:
            artifacts[UPLIFT_ARTIFACT] = str(uplift.save(Path(tmp) / UPLIFT_ARTIFACT))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ChurnPyfunc(), artifacts=artifacts,
            code_paths=_code_copy(Path(tmp) / "code"), signature=model_signature(scorer),
            input_example=example, pip_requirements=model_requirements(Path(tmp)),
            registered_model_name=model_name)
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(model_name, CHALLENGER, version)
    log.info("registered %s version %s (alias %s)", model_name, version, CHALLENGER)
    return f"models:/{model_name}/{version}", version


def log_frame(frame: pd.DataFrame, artifact_path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_path).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact_path).parent))


def clean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow metric names allow only some characters; values must be finite."""
    out = {}
    for k, v in metrics.items():
        if v is None or not np.isfinite(v):
            continue
        key = "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in k)
        out[key] = float(v)
    return out

"""MLflow: experiments, runs (params, fingerprint, metrics, plots, hold-out), the logged model."""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from features.spec import CATEGORY
from scoring.artifact import SCORER_ARTIFACT, UPLIFT_ARTIFACT, ChurnPyfunc
from scoring.model_store import use_tracking
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer

log = logging.getLogger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "pandas>=3", "numpy>=2", "scikit-learn==1.9.1",
                    "mlflow==3.17.2"]


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


def model_input_frame(scorer: ChurnScorer, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as the pyfunc signature expects: float64 numbers, object strings."""
    out = {}
    for name, kind in zip(scorer.features, scorer.kinds, strict=True):
        values = frame[name]
        if kind == CATEGORY:
            out[name] = values.astype("object").where(values.notna(), None)
        else:
            out[name] = pd.to_numeric(values.astype("float64") if pd.api.types.is_bool_dtype(values)
                                      else values, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=frame.index)


def log_model(scorer: ChurnScorer, example: pd.DataFrame, model_name: str,
              uplift: UpliftModels | None = None) -> tuple[str, str]:
    """Log the pyfunc (scorer and uplift models inside) with signature and input example, and
    register a version. Returns (model_uri, version); the alias ``challenger`` points at it.
    """
    example = model_input_frame(scorer, example.head(5))
    output = pd.DataFrame({"churn_probability": scorer.predict_frame(example)})
    signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {SCORER_ARTIFACT: str(scorer.save(Path(tmp) / SCORER_ARTIFACT))}
        if uplift is not None:
            artifacts[UPLIFT_ARTIFACT] = str(uplift.save(Path(tmp) / UPLIFT_ARTIFACT))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ChurnPyfunc(), artifacts=artifacts,
            signature=signature, input_example=example, pip_requirements=PIP_REQUIREMENTS,
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

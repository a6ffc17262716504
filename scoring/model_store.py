"""Loading a ChurnScorer from MLflow (a registry alias, a version or a run) without training code."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from scoring.artifact import HOLDOUT_ARTIFACT, SCORER_ARTIFACT, UPLIFT_ARTIFACT
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else the embedded SQLite store in the working directory
    (as an absolute path: MLflow caches stores by URI, and the working directory may change)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(DEFAULT_TRACKING_URI[len('sqlite:///'):]).resolve()}"


def use_tracking(uri: str | None = None) -> str:
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """The experiment's id, created on first use (artifacts beside the SQLite store by default)."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):]).resolve()
        location = (db.parent / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@dataclass(frozen=True)
class LoadedModel:
    scorer: ChurnScorer
    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    uplift: UpliftModels | None = None


def resolve(model_uri: str, client: MlflowClient | None = None) -> tuple[str | None, str | None]:
    """(name, version) of a ``models:/name@alias`` or ``models:/name/version`` URI."""
    if not model_uri.startswith("models:/"):
        return None, None
    client = client or MlflowClient()
    rest = model_uri[len("models:/"):]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
        return name, str(mv.version)
    name, _, version = rest.partition("/")
    return name, version


def load_scorer(model_uri: str, dst: str | Path | None = None,
                tracking: str | None = None) -> LoadedModel:
    """Download a logged churn model and rebuild its scorer (booster + calibrator + spec).

    ``tracking`` pins the tracking server (a long-lived service passes the one it started with,
    rather than whatever the process-wide default is at that moment)."""
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    name, version = resolve(model_uri, client)
    fixed_uri = f"models:/{name}/{version}" if name else model_uri
    local = mlflow.artifacts.download_artifacts(artifact_uri=fixed_uri, dst_path=
                                                str(dst) if dst else None, tracking_uri=tracking,
                                                registry_uri=tracking)
    folder = Path(local) / "artifacts" / SCORER_ARTIFACT
    if not (folder / "scorer.json").exists():
        raise ValueError(f"{model_uri} is not a churn model logged by `churn train`")
    run_id = client.get_model_version(name, version).run_id if name else None
    uplift_dir = Path(local) / "artifacts" / UPLIFT_ARTIFACT
    uplift = UpliftModels.load(uplift_dir) if (uplift_dir / "uplift.json").exists() else None
    log.info("loaded %s (version %s)", model_uri, version)
    return LoadedModel(ChurnScorer.load(folder), fixed_uri, name, version, run_id, uplift)


def load_holdout(run_id: str) -> pd.DataFrame:
    """The hold-out rows a training run logged (features, label and the model's score)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HOLDOUT_ARTIFACT,
                                                   dst_path=tmp)
        return pd.read_parquet(path)

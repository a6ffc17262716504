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

from features.errors import BadInput
from scoring.artifact import HOLDOUT_ARTIFACT, SCORER_ARTIFACT, UPLIFT_ARTIFACT
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

# MLflow's own defaults wait 120 s per request and retry 7 times with backoff: minutes before a
# call to an unreachable server fails. Ours fail within seconds (a refused connection in about
# 3 s, a silent host in at most 3 x 5 s plus 3 s of backoff). Variables already set win.
MLFLOW_HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",         # seconds per request (connect, then each read)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",     # retries after the first attempt
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # urllib3 backoff: 0 s, then 2 s
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else the embedded SQLite store in the working directory
    (as an absolute path: MLflow caches stores by URI, and the working directory may change)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(DEFAULT_TRACKING_URI[len('sqlite:///'):]).resolve()}"


def bound_mlflow_requests(env: dict[str, str] | None = None) -> dict[str, str]:
    """Give MLflow's HTTP client bounded timeouts and retries (``MLFLOW_HTTP_BOUNDS``) unless the
    environment already sets them; MLflow reads them at each request. Returns the values in force."""
    env = os.environ if env is None else env
    for name, value in MLFLOW_HTTP_BOUNDS.items():
        env.setdefault(name, value)
    return {name: env[name] for name in MLFLOW_HTTP_BOUNDS}


def use_tracking(uri: str | None = None) -> str:
    """Point MLflow at the tracking server (``tracking_uri()`` by default), with bounded HTTP
    timeouts: every path that talks to MLflow (training, promotion, scoring, the service) comes
    through here."""
    bound_mlflow_requests()
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
    return download_scorer(model_uri, dst, tracking)[0]


def download_scorer(model_uri: str, dst: str | Path | None = None,
                    tracking: str | None = None) -> tuple[LoadedModel, Path]:
    """``load_scorer``, also returning the folder holding the model's ``artifacts``."""
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    name, version = resolve(model_uri, client)
    fixed_uri = f"models:/{name}/{version}" if name else model_uri
    # where the version's files are, asked of the pinned client: MLflow's models:/ artifact
    # repository asks the process-wide default registry instead of the one passed below
    source = client.get_model_version_download_uri(name, version) if name else model_uri
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=
                                                str(dst) if dst else None, tracking_uri=tracking,
                                                registry_uri=tracking)
    if not (Path(local) / "artifacts" / SCORER_ARTIFACT / "scorer.json").exists():
        raise BadInput(f"{model_uri} is not a churn model logged by `churn train`")
    run_id = client.get_model_version(name, version).run_id if name else None
    loaded = read_scorer(Path(local) / "artifacts", fixed_uri, name, version, run_id)
    log.info("loaded %s (version %s)", model_uri, version)
    return loaded, Path(local) / "artifacts"


def read_scorer(artifacts: Path, uri: str, name: str | None, version: str | None,
                run_id: str | None) -> LoadedModel:
    """Rebuild a model from a local ``artifacts`` folder (the scorer, and the uplift models when
    the model carries them)."""
    uplift_dir = artifacts / UPLIFT_ARTIFACT
    uplift = UpliftModels.load(uplift_dir) if (uplift_dir / "uplift.json").exists() else None
    return LoadedModel(ChurnScorer.load(artifacts / SCORER_ARTIFACT), uri, name, version, run_id,
                       uplift)


def load_holdout(run_id: str) -> pd.DataFrame:
    """The hold-out rows a training run logged (features, label and the model's score)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HOLDOUT_ARTIFACT,
                                                   dst_path=tmp)
        return pd.read_parquet(path)

"""`churn serve`: the BentoML service, started with the project's settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.cli import VerboseOpt, _setup, handles_bad_input
from churn.settings import Settings

app = typer.Typer()


@app.command("serve")
@handles_bad_input
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    model: Annotated[str | None, typer.Option(help="Model URI (default: the champion).")] = None,
    store: Annotated[Path | None, typer.Option(help="Online store file.")] = None,
    api_key_file: Annotated[Path | None, typer.Option(help="File with API keys, one a line.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (default 1, or CHURN_WORKERS).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML settings file; its bands: replace CHURN_RISK_BANDS for the service.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Start the BentoML service (bentoml serve) with the project's settings."""
    import subprocess

    from features.store import SQLiteStore
    from serving.settings import ServeSettings

    env = _server_env(_setup(verbose, config), model, store, api_key_file, workers)
    settings = ServeSettings.from_env(env)  # a ServeSettingsError is bad input (exit 2)
    opened = SQLiteStore(settings.store)  # refuses a missing, foreign or damaged file
    stamp = opened.stamp
    opened.close()
    _warn_if_others_can_read(env.get("CHURN_API_KEY_FILE"))
    bentoml = Path(sys.executable).parent / "bentoml"
    cmd = [str(bentoml), "serve", "serving.service:ChurnService", "--port", str(port),
           "--host", host]
    typer.echo(f"serving {settings.model_uri} on http://{host}:{port} (store {settings.store} "
               f"version {stamp.version}, {stamp.customers:,} customers; "
               f"{settings.workers} worker{'s' if settings.workers > 1 else ''})")
    raise typer.Exit(subprocess.call(cmd, env=env))


def _warn_if_others_can_read(key_file: str | None) -> None:
    if key_file and Path(key_file).stat().st_mode & 0o077:
        mode = Path(key_file).stat().st_mode & 0o777
        typer.echo(f"warning: API key file {key_file} can be read by other users (mode "
                   f"{mode:o}): chmod 600 {key_file}", err=True)


def _server_env(settings: Settings, model: str | None, store: Path | None,
                api_key_file: Path | None, workers: int | None) -> dict[str, str]:
    """The service's environment: ours, with the command line's choices written into it.

    Risk bands from a config file that sets ``bands:`` win over ``CHURN_RISK_BANDS``; without
    them the variable is left as it is (or given the default bands).
    """
    from scoring.model_store import bound_mlflow_requests, tracking_uri

    env = dict(os.environ)
    env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    bound_mlflow_requests(env)
    # the workers' working directory is not ours to rely on: the local model copy path is fixed
    env["CHURN_MODEL_CACHE"] = str(Path(env.get("CHURN_MODEL_CACHE", ".churn-model-cache"))
                                   .resolve())
    bands = f"{settings.bands.medium},{settings.bands.high}"
    if "bands" in settings.model_fields_set:
        env["CHURN_RISK_BANDS"] = bands
    else:
        env.setdefault("CHURN_RISK_BANDS", bands)
    if model:
        env["CHURN_MODEL_URI"] = model
    if store:
        env["CHURN_STORE"] = str(store.resolve())
    if api_key_file:
        env["CHURN_API_KEY_FILE"] = str(api_key_file.resolve())
    if workers is not None:
        env["CHURN_WORKERS"] = str(workers)
    return env

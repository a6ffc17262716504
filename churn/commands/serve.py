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

    from serving.settings import ServeSettings, ServeSettingsError

    env = _server_env(_setup(verbose, config), model, store, api_key_file, workers)
    try:
        settings = ServeSettings.from_env(env)
    except ServeSettingsError as exc:
        raise ValueError(str(exc)) from exc
    if not settings.store.exists():
        raise ValueError(f"online store {settings.store} does not exist: run `churn features "
                         "materialize` first")
    bentoml = Path(sys.executable).parent / "bentoml"
    cmd = [str(bentoml), "serve", "serving.service:ChurnService", "--port", str(port),
           "--host", host]
    typer.echo(f"serving {settings.model_uri} on http://{host}:{port} (store {settings.store}, "
               f"{settings.workers} worker{'s' if settings.workers > 1 else ''})")
    raise typer.Exit(subprocess.call(cmd, env=env))


def _server_env(settings: Settings, model: str | None, store: Path | None,
                api_key_file: Path | None, workers: int | None) -> dict[str, str]:
    """The service's environment: ours, with the command line's choices written into it.

    Risk bands from a config file that sets ``bands:`` win over ``CHURN_RISK_BANDS``; without
    them the variable is left as it is (or given the default bands).
    """
    from scoring.model_store import tracking_uri

    env = dict(os.environ)
    env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
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

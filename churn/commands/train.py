"""`churn train`, `churn retrain` and `churn promote`: challengers, and the gate to champion."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from churn.cli import (
    EXIT_JOB_FAILED,
    ConfigOpt,
    VerboseOpt,
    _dates,
    _fail,
    _label_config,
    _setup,
    handles_bad_input,
    summary,
)
from churn.commands.data import AsOfOpt
from churn.options import ChurnDefinition
from churn.settings import Settings, resolve_as_of
from features.errors import BadInput

app = typer.Typer()


def handles_tracking_failures(fn):
    """MLflow down or failing: one line naming the tracking server and exit code 1 (the job
    failed; the input may be fine), never minutes of retries and a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from mlflow.exceptions import MlflowException

        from scoring.model_store import tracking_uri
        from training.tracking import TrackingUnavailableError

        try:
            return fn(*args, **kwargs)
        except TrackingUnavailableError as exc:
            _fail(str(exc), EXIT_JOB_FAILED)
        except MlflowException as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            _fail(f"MLflow at {tracking_uri()} failed: {first}", EXIT_JOB_FAILED)

    return wrapper


@app.command("train")
@handles_bad_input
@handles_tracking_failures
def train(
    data: Annotated[Path | None, typer.Option(help="CRM data source (event path).")] = None,
    cutoff: Annotated[list[str] | None, typer.Option(
        help="Cutoff date, repeat for several; the latest complete one is the hold-out.")] = None,
    horizon_days: Annotated[int | None, typer.Option(help="Label horizon in days.")] = None,
    definition: Annotated[ChurnDefinition | None, typer.Option(
        help="noncontractual or contractual churn.")] = None,
    table: Annotated[Path | None, typer.Option(
        help="A customer table with a label (table path), Parquet or CSV.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Id column of --table.")] = None,
    label: Annotated[str | None, typer.Option(help="Label column of --table (0/1, yes/no).")] = None,
    time_col: Annotated[str | None, typer.Option(
        help="Time column of --table: hold out the latest rows instead of a random split.")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    tune_trials: Annotated[int, typer.Option(help="Optuna trials (0 = defaults).")] = 0,
    plots: Annotated[Path | None, typer.Option(help="Also write the plots (PNG) here.")] = None,
    catalogue: Annotated[Path | None, typer.Option(
        help="Offer catalogue YAML whose offers' effects are learnt from past campaigns "
             "(event path only; default: the built-in catalogue).")] = None,
    readouts: Annotated[list[Path] | None, typer.Option(
        help="Evidence tables of campaign readouts (`churn offers readout --out`; repeat): an "
             "offer they disprove is not used, whatever the past campaigns suggest.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train a calibrated LightGBM churn model, log it to MLflow and register a challenger."""
    import json

    from training.tracking import check_tracking

    settings = _setup(verbose, config)
    tconfig = _training_config(settings, experiment, model_name)
    if (data is None) == (table is None):
        raise BadInput("give either --data with --cutoff (event path) or --table with --id and "
                         "--label (table path)")
    if tune_trials < 0:
        raise BadInput("--tune-trials must be 0 or more")
    if data is not None:
        if not cutoff or len(cutoff) < 2:
            raise BadInput("--data needs at least two --cutoff dates (train and hold-out)")
        labels = _label_config(settings, horizon_days, definition)
        declared = resolve_as_of(settings, as_of)
        check_tracking()  # MLflow down: fail in seconds, before the data is read
        with summary("train"):
            result = _train_on_events(data, cutoff, settings, labels, tconfig, tune_trials, plots,
                                      catalogue, declared, readouts)
    else:
        if not id or not label:
            raise BadInput("--table needs --id and --label")
        if catalogue is not None:
            raise BadInput("--catalogue is for the event path (--data): a table has no past "
                             "campaigns to learn offer effects from")
        if readouts:
            raise BadInput("--readouts is for the event path (--data): a table has no offers")
        if as_of is not None:
            raise BadInput("--as-of is for the event path (--data): a table's labels are "
                           "given, not judged against the data's end")
        check_tracking()  # MLflow down: fail in seconds, before the table is read
        with summary("train"):
            result = _train_on_table(table, id, label, tconfig, time_col, tune_trials, plots)
    _report(result)
    if as_json:
        typer.echo(json.dumps(result.summary()))


def _training_config(settings: Settings, experiment: str | None, model_name: str | None):
    overrides = {k: v for k, v in (("experiment", experiment), ("model_name", model_name)) if v}
    return settings.training.model_copy(update=overrides)


def _train_on_events(data: Path, cutoff: list[str], settings: Settings, labels, tconfig,
                     tune_trials: int, plots: Path | None, catalogue: Path | None, as_of=None,
                     readouts: list[Path] | None = None):
    """The event path; the catalogue and readouts are read before the data, so a bad one fails
    fast."""
    from features.io import load_crm
    from scoring.offers.catalogue import load_catalogue
    from training.readouts import read_evidence

    offers = load_catalogue(catalogue) if catalogue is not None else None
    evidence = read_evidence(readouts) if readouts else None
    return _events_result(load_crm(data, as_of=as_of), _dates(cutoff), settings.features, labels,
                          tconfig, tune_trials, plots, offers, as_of, evidence)


def _events_result(crm, cutoffs, features, labels, tconfig, tune_trials=0, plots=None,
                   catalogue=None, as_of=None, readouts=None):
    """Train on the events; with a declared as-of date, labels are judged against it (the data's
    end) rather than against the latest timestamp in the data."""
    from training import pipeline

    return pipeline.train_on_events(crm, cutoffs, features, labels, tconfig, tune_trials, plots,
                                    catalogue=catalogue, data_end=as_of, readouts=readouts)


def _train_on_table(table: Path, id: str, label: str, tconfig, time_col: str | None,
                    tune_trials: int, plots: Path | None):
    from features.io import read_frame
    from training.pipeline import train_on_table

    try:
        frame = read_frame(table)
    except Exception as exc:  # noqa: BLE001 - unreadable files are bad input
        raise BadInput(f"cannot read {table}: {exc}") from exc
    return train_on_table(table, frame, id, label, tconfig, time_col, tune_trials, plots)


def _report(result) -> None:
    m = result.metrics
    typer.echo(f"model {result.model_uri} (alias challenger), run {result.run_id}")
    typer.echo(f"hold-out: ROC AUC {m['roc_auc']:.4f}  PR AUC {m['pr_auc']:.4f}  "
               f"Brier {m['brier']:.4f}  calibration error {m['calibration_error']:.4f}  "
               f"lift@10% {m['lift_top10']:.2f}  capture@10% {m['capture_top10']:.1%}")
    for name, b in result.baselines.items():
        typer.echo(f"  baseline {name:<20} ROC AUC {b['roc_auc']:.4f}  PR AUC {b['pr_auc']:.4f}  "
                   f"lift@10% {b['lift_top10']:.2f}")
    typer.echo(result.verdict)


@app.command("retrain")
@handles_bad_input
@handles_tracking_failures
def retrain(
    data: Annotated[Path, typer.Option(help="CRM data source, with the newest events.")],
    cutoff: Annotated[list[str], typer.Option(
        help="Cutoffs; the latest complete one is the recent hold-out both models face.")],
    force: Annotated[bool, typer.Option(help="Promote even if worse (recorded).")] = False,
    plots: Annotated[Path, typer.Option(help="Where the comparison plot goes.")] = Path(
        "retrain-plots"),
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Features on new cutoffs, a challenger, the comparison with the champion, the gate."""
    from features.io import load_crm
    from training.registry import PromotionError, compare
    from training.tracking import check_tracking

    settings = _setup(verbose, config)
    t = settings.training
    if len(cutoff) < 2:
        raise BadInput("--cutoff is needed at least twice (train and hold-out)")
    declared = resolve_as_of(settings, as_of)
    check_tracking()  # MLflow down: fail in seconds, before the data is read
    with summary("retrain"):
        result = _events_result(load_crm(data, as_of=declared), _dates(cutoff),
                                settings.features, settings.labels, t, as_of=declared)
    typer.echo(f"challenger {result.model_uri} trained ({result.verdict})")
    try:
        table = compare(t.model_name, plots)
        typer.echo(f"  {'on the challenger hold-out':<28}{'ROC AUC':>9}{'PR AUC':>9}{'Brier':>8}"
                   f"{'calib.err':>10}{'lift@10%':>10}")
        for name, m in table.items():
            typer.echo(f"  {name:<28}{m['roc_auc']:>9.4f}{m['pr_auc']:>9.4f}{m['brier']:>8.4f}"
                       f"{m['calibration_error']:>10.4f}{m['lift_top10']:>10.2f}")
    except PromotionError as exc:
        raise BadInput(str(exc)) from exc
    typer.echo(f"  ROC and calibration of both: {plots / 'comparison.png'}")
    _gate(t.model_name, t, force)


def _gate(model_name: str, t, force: bool) -> None:
    """Run the promotion gate, say what it decided; exit 1 when it refused."""
    from training.registry import PromotionError
    from training.registry import promote as run_promotion
    from training.tracking import check_tracking

    check_tracking()
    try:
        result = run_promotion(model_name, t.primary_metric, t.promotion_tolerance, force)
    except PromotionError as exc:
        raise BadInput(str(exc)) from exc
    verb = "promoted" if result.promoted else "NOT promoted"
    typer.echo(f"version {result.challenger_version} {verb}: {result.reason}")
    if not result.promoted and "already" not in result.reason:
        raise typer.Exit(1)


@app.command("promote")
@handles_bad_input
@handles_tracking_failures
def promote(
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if worse (recorded).")] = False,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Move the alias champion to the challenger if it is no worse on the challenger's hold-out."""
    settings = _setup(verbose, config)
    _gate(model_name or settings.training.model_name, settings.training, force)

"""The ``churn`` command: one front door for data, features, training, scoring and the demo.

Each subcommand parses its options, calls one function and reports. Errors in the input end with
a message that says what is wrong and a non-zero exit; nothing half-written is left behind.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from churn.settings import Settings, SettingsError, load_settings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

app = typer.Typer(help="Customer churn prediction: find the customers about to leave, say why, "
                       "and which retention offer pays.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Sample data and data-contract checks.", no_args_is_help=True)
features_app = typer.Typer(help="Point-in-time features and labels.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

EXIT_BAD_INPUT = 2

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML settings file.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress (to stderr).")]


def _setup(verbose: bool, config: Path | None) -> Settings:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return load_settings(config)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def handles_bad_input(fn):
    """Turn contract, settings and input errors into a clear message and exit code 2."""
    from features.contract import ContractError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ContractError as exc:
            _fail(str(exc))
        except (SettingsError, ValueError, FileNotFoundError) as exc:
            _fail(str(exc))

    return wrapper


def _dates(values: list[str]) -> list[date]:
    out = []
    for v in values:
        try:
            out.append(date.fromisoformat(v))
        except ValueError as exc:
            raise ValueError(f"--cutoff {v!r} is not a date (YYYY-MM-DD)") from exc
    return out


def _label_config(settings: Settings, horizon_days: int | None, definition: str | None):
    """The settings' label definition with the command-line overrides applied (and checked)."""
    from pydantic import ValidationError

    from features.config import LabelConfig

    overrides = {k: v for k, v in (("horizon_days", horizon_days), ("definition", definition))
                 if v is not None}
    try:
        return LabelConfig(**{**settings.labels.model_dump(), **overrides})
    except ValidationError as exc:
        raise ValueError("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
                                   for e in exc.errors())) from exc


@data_app.command("generate")
@handles_bad_input
def data_generate(
    out: Annotated[Path, typer.Option(help="Folder to write the tables to.")] = Path("data/sample"),
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 20_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 7,
    start: Annotated[str, typer.Option(help="First month of the data.")] = "2024-01-01",
    verbose: VerboseOpt = False,
) -> None:
    """Write a realistic sample CRM (all six tables, plus _truth/ for evaluation)."""
    from features.sample import SampleSpec, generate, write_sample

    _setup(verbose, None)
    counts = write_sample(generate(SampleSpec(customers, months, seed, start)), out)
    typer.echo(f"wrote {out}/")
    for name, rows in counts.items():
        typer.echo(f"  {name:<28} {rows:>12,} rows")


@data_app.command("validate")
@handles_bad_input
def data_validate(
    source: Annotated[Path, typer.Argument(help="Folder of Parquet/CSV files or a DuckDB file.")],
    verbose: VerboseOpt = False,
) -> None:
    """Check a data source against the contract; exit 2 with every problem listed."""
    from features.io import load_crm

    _setup(verbose, None)
    crm = load_crm(source)
    typer.echo(f"{source}: the data meets the contract")
    for name, frame in crm.tables().items():
        typer.echo(f"  {name:<12} {len(frame):>12,} rows")
    typer.echo(f"  data ends    {crm.data_end}")


@features_app.command("build")
@handles_bad_input
def features_build(
    data: Annotated[Path, typer.Option(help="The CRM data source.")],
    cutoff: Annotated[list[str], typer.Option(help="Cutoff date (repeat for several).")],
    out: Annotated[Path, typer.Option(help="Output Parquet file.")],
    horizon_days: Annotated[int | None, typer.Option(help="Label horizon in days.")] = None,
    definition: Annotated[str | None, typer.Option(
        help="noncontractual (no order in the horizon) or contractual (cancel_date in it).")] = None,
    engine: Annotated[str, typer.Option(help="local (pandas) or spark.")] = "local",
    spark_master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[*]",
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Point-in-time features and churn labels at each cutoff, stacked into one training set."""
    from features.build import build_feature_set, write_feature_set
    from features.io import load_crm

    settings = _setup(verbose, config)
    labels = _label_config(settings, horizon_days, definition)
    cutoffs = _dates(cutoff)
    if engine == "spark":
        from jobs.spark_features import spark_feature_set

        fs = spark_feature_set(data, cutoffs, settings.features, labels, master=spark_master)
    elif engine == "local":
        fs = build_feature_set(load_crm(data), cutoffs, settings.features, labels)
    else:
        raise ValueError("--engine must be local or spark")
    write_feature_set(fs, out)
    frame = fs.frame
    typer.echo(f"wrote {out}: {len(frame):,} rows, {len(fs.specs)} features, "
               f"{len(cutoffs)} cutoffs ({labels.definition}, {labels.horizon_days}-day horizon)")
    for c, group in frame.groupby("cutoff"):
        known = group["label"].notna()
        rate = f"{group.loc[known, 'label'].mean():.1%}" if known.any() else "not known yet"
        typer.echo(f"  {c.date()}  {len(group):>9,} customers  churn {rate}")


def _training_config(settings: Settings, experiment: str | None, model_name: str | None):
    overrides = {k: v for k, v in (("experiment", experiment), ("model_name", model_name)) if v}
    return settings.training.model_copy(update=overrides)


@features_app.command("materialize")
@handles_bad_input
def features_materialize(
    data: Annotated[Path, typer.Option(help="The CRM data source.")],
    cutoff: Annotated[str, typer.Option(help="Features as of this date (usually today).")],
    store: Annotated[Path, typer.Option(help="The online store file (SQLite).")] = Path(
        "online_store.sqlite"),
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write every customer's latest features into the online store the service reads."""
    from features.build import build_feature_set
    from features.io import load_crm
    from features.store import materialize

    settings = _setup(verbose, config)
    crm = load_crm(data)
    fs = build_feature_set(crm, _dates([cutoff]), settings.features, settings.labels,
                           population_only=False)
    fs.frame["cutoff"] = fs.frame["cutoff"].astype("datetime64[ns]")
    n = materialize(fs.frame, fs.feature_names, store)
    typer.echo(f"wrote {store}: {n:,} customers, {len(fs.specs)} features as of {cutoff}")


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
    verbose: VerboseOpt = False,
) -> None:
    """Start the BentoML service (bentoml serve) with the project's settings."""
    import subprocess

    from scoring.model_store import tracking_uri
    from serving.settings import ServeSettings, ServeSettingsError

    _setup(verbose, None)
    env = dict(os.environ)
    env.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    if model:
        env["CHURN_MODEL_URI"] = model
    if store:
        env["CHURN_STORE"] = str(store.resolve())
    if api_key_file:
        env["CHURN_API_KEY_FILE"] = str(api_key_file.resolve())
    if workers is not None:
        env["CHURN_WORKERS"] = str(workers)
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


@app.command("train")
@handles_bad_input
def train(
    data: Annotated[Path | None, typer.Option(help="CRM data source (event path).")] = None,
    cutoff: Annotated[list[str] | None, typer.Option(
        help="Cutoff date, repeat for several; the latest complete one is the hold-out.")] = None,
    horizon_days: Annotated[int | None, typer.Option(help="Label horizon in days.")] = None,
    definition: Annotated[str | None, typer.Option(
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train a calibrated LightGBM churn model, log it to MLflow and register a challenger."""
    import json

    from training.pipeline import train_on_events, train_on_table

    settings = _setup(verbose, config)
    tconfig = _training_config(settings, experiment, model_name)
    if (data is None) == (table is None):
        raise ValueError("give either --data with --cutoff (event path) or --table with --id and "
                         "--label (table path)")
    if tune_trials < 0:
        raise ValueError("--tune-trials must be 0 or more")
    if data is not None:
        from features.io import load_crm

        if not cutoff or len(cutoff) < 2:
            raise ValueError("--data needs at least two --cutoff dates (train and hold-out)")
        labels = _label_config(settings, horizon_days, definition)
        result = train_on_events(load_crm(data), _dates(cutoff), settings.features, labels,
                                 tconfig, tune_trials, plots)
    else:
        from features.io import read_frame

        if not id or not label:
            raise ValueError("--table needs --id and --label")
        try:
            frame = read_frame(table)
        except Exception as exc:  # noqa: BLE001 - unreadable files are bad input
            raise ValueError(f"cannot read {table}: {exc}") from exc
        result = train_on_table(table, frame, id, label, tconfig, time_col, tune_trials, plots)
    m = result.metrics
    typer.echo(f"model {result.model_uri} (alias challenger), run {result.run_id}")
    typer.echo(f"hold-out: ROC AUC {m['roc_auc']:.4f}  PR AUC {m['pr_auc']:.4f}  "
               f"Brier {m['brier']:.4f}  calibration error {m['calibration_error']:.4f}  "
               f"lift@10% {m['lift_top10']:.2f}  capture@10% {m['capture_top10']:.1%}")
    for name, b in result.baselines.items():
        typer.echo(f"  baseline {name:<20} ROC AUC {b['roc_auc']:.4f}  PR AUC {b['pr_auc']:.4f}  "
                   f"lift@10% {b['lift_top10']:.2f}")
    typer.echo(result.verdict)
    if as_json:
        typer.echo(json.dumps(result.summary()))


@app.command("retrain")
@handles_bad_input
def retrain(
    data: Annotated[Path, typer.Option(help="CRM data source, with the newest events.")],
    cutoff: Annotated[list[str], typer.Option(
        help="Cutoffs; the latest complete one is the recent hold-out both models face.")],
    force: Annotated[bool, typer.Option(help="Promote even if worse (recorded).")] = False,
    plots: Annotated[Path, typer.Option(help="Where the comparison plot goes.")] = Path(
        "retrain-plots"),
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Features on new cutoffs, a challenger, the comparison with the champion, the gate."""
    from features.io import load_crm
    from training.pipeline import train_on_events
    from training.registry import PromotionError, compare

    settings = _setup(verbose, config)
    t = settings.training
    if len(cutoff) < 2:
        raise ValueError("--cutoff is needed at least twice (train and hold-out)")
    result = train_on_events(load_crm(data), _dates(cutoff), settings.features, settings.labels, t)
    typer.echo(f"challenger {result.model_uri} trained ({result.verdict})")
    try:
        table = compare(t.model_name, plots)
        typer.echo(f"  {'on the challenger hold-out':<28}{'ROC AUC':>9}{'PR AUC':>9}{'Brier':>8}"
                   f"{'calib.err':>10}{'lift@10%':>10}")
        for name, m in table.items():
            typer.echo(f"  {name:<28}{m['roc_auc']:>9.4f}{m['pr_auc']:>9.4f}{m['brier']:>8.4f}"
                       f"{m['calibration_error']:>10.4f}{m['lift_top10']:>10.2f}")
    except PromotionError as exc:
        raise ValueError(str(exc)) from exc
    typer.echo(f"  ROC and calibration of both: {plots / 'comparison.png'}")
    _gate(t.model_name, t, force)


def _gate(model_name: str, t, force: bool) -> None:
    """Run the promotion gate, say what it decided; exit 1 when it refused."""
    from training.registry import PromotionError
    from training.registry import promote as run_promotion

    try:
        result = run_promotion(model_name, t.primary_metric, t.promotion_tolerance, force)
    except PromotionError as exc:
        raise ValueError(str(exc)) from exc
    verb = "promoted" if result.promoted else "NOT promoted"
    typer.echo(f"version {result.challenger_version} {verb}: {result.reason}")
    if not result.promoted and "already" not in result.reason:
        raise typer.Exit(1)


@app.command("promote")
@handles_bad_input
def promote(
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if worse (recorded).")] = False,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Move the alias champion to the challenger if it is no worse on the challenger's hold-out."""
    settings = _setup(verbose, config)
    _gate(model_name or settings.training.model_name, settings.training, force)


@app.command("score")
@handles_bad_input
def score(
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv), written atomically.")],
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/churn@champion",
    features: Annotated[Path | None, typer.Option(
        "--features", "--table", help="A table with the model's feature columns.")] = None,
    data: Annotated[Path | None, typer.Option(help="Raw CRM data: features built on the fly.")] = None,
    cutoff: Annotated[str | None, typer.Option(help="With --data: score as of this date.")] = None,
    id: Annotated[str, typer.Option("--id", help="Id column of the table.")] = "customer_id",
    campaign_budget: Annotated[float | None, typer.Option(
        help="Allocate offers across the base within this budget.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Rows per chunk (bounds memory).")] = 50_000,
    top_reasons: Annotated[int, typer.Option(help="Reasons per customer (0 = none).")] = 3,
    reasons_for: Annotated[str, typer.Option(
        help="Give reasons to every customer (low) or from this risk band up (medium, high): "
             "reasons cost far more than scores.")] = "low",
    max_quarantine_share: Annotated[float, typer.Option(
        help="Fail when more rows than this share cannot be scored.")] = 0.01,
    unknown_category: Annotated[str, typer.Option(
        help="missing (score it as missing) or quarantine.")] = "missing",
    catalogue: Annotated[Path | None, typer.Option(help="Offer catalogue YAML.")] = None,
    engine: Annotated[str, typer.Option(help="local or spark.")] = "local",
    spark_master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[*]",
    track: Annotated[bool, typer.Option(help="Log the run and its summary to MLflow.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Score the customer base: probability, risk band, reasons and offer for every customer."""
    settings = _setup(verbose, config)
    from jobs.batch import BatchConfig
    from jobs.runner import run_scoring_job

    if (features is None) == (data is None):
        raise ValueError("give either --features FILE (a feature table) or --data DIR with "
                         "--cutoff DATE")
    if data is not None and not cutoff:
        raise ValueError("--data needs --cutoff")
    if engine not in ("local", "spark"):
        raise ValueError("--engine must be local or spark")
    if unknown_category not in ("missing", "quarantine"):
        raise ValueError("--unknown-category must be missing or quarantine")
    if reasons_for not in ("low", "medium", "high"):
        raise ValueError("--reasons-for must be low, medium or high")
    if chunk_size < 1 or not 0 <= max_quarantine_share <= 1:
        raise ValueError("--chunk-size must be positive and --max-quarantine-share in 0..1")
    bconfig = BatchConfig(chunk_size=chunk_size, top_reasons=top_reasons,
                          reasons_min_band=reasons_for,
                          max_quarantine_share=max_quarantine_share,
                          unknown_category=unknown_category, campaign_budget=campaign_budget,
                          id_column=id)
    summary, loaded = run_scoring_job(
        model, out, bconfig, settings, features=features, data=data,
        cutoff=_dates([cutoff])[0] if cutoff else None, catalogue=catalogue, engine=engine,
        spark_master=spark_master, track=track)
    typer.echo(f"wrote {out}: {summary.rows_scored:,} customers scored by {loaded.uri}, "
               f"{summary.rows_quarantined:,} quarantined (of {summary.rows_in:,} rows in)")
    typer.echo(f"  expected churners {summary.expected_churners:,.0f}; offers "
               + ", ".join(f"{k} {v:,}" for k, v in summary.offers.items())
               + f"; spend {summary.spend:,.0f}; expected value saved "
               f"{summary.expected_value_saved:,.0f} (net {summary.expected_net_value:,.0f})")


@app.command("monitor")
@handles_bad_input
def monitor(
    features: Annotated[Path, typer.Option(help="New features (a feature set or table).")],
    report: Annotated[Path, typer.Option(help="HTML report to write.")] = Path("monitor.html"),
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/churn@champion",
    scored: Annotated[Path | None, typer.Option(
        help="An earlier `churn score` output whose labels have matured (back-test).")] = None,
    data: Annotated[Path | None, typer.Option(help="Raw CRM data for the back-test labels.")] = None,
    psi_alert: Annotated[float | None, typer.Option(
        help="Feature PSI that alerts (default from the config: 0.25).")] = None,
    track: Annotated[bool, typer.Option(help="Log the metrics and report to MLflow.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Drift and back-test report. Exit 0 = fine, 3 = an alert, 2 = bad input."""
    from jobs.monitor import run_monitor
    from jobs.runner import load_model
    from scoring.bands import RiskBands

    settings = _setup(verbose, config)
    mconfig = settings.monitor
    if psi_alert is not None:
        mconfig = mconfig.model_copy(update={"psi_alert": psi_alert})
    result = run_monitor(load_model(model), features, report, mconfig, RiskBands(),
                         scored=scored, data=data, track=track)
    d = result.drift
    typer.echo(f"wrote {report}: score PSI {d.score_psi:.3f}; risk bands "
               + ", ".join(f"{k} {v:.0%}" for k, v in d.bands_cur.items()))
    if result.backtest:
        b = result.backtest
        typer.echo(f"back-test: ROC AUC {b['roc_auc']:.3f}, calibration error "
                   f"{b['calibration_error']:.3f}, lift@10% {b['lift_top10']:.2f} on "
                   f"{int(b['rows']):,} customers")
    if result.offers is not None and len(result.offers):
        for _, r in result.offers.iterrows():
            typer.echo(f"offer {r['offer_id']}: {r['treated']} treated / {r['hold_out']} held out; "
                       f"churn cut expected {r['expected_churn_cut']:.3f}, realised "
                       f"{r['realised_churn_cut']:.3f}")
    for alert in result.alerts:
        typer.echo(f"ALERT {alert}")
    typer.echo(f"{len(result.alerts)} alerts, {len(d.warnings)} warnings")
    raise typer.Exit(result.exit_code)


@app.command("demo")
@handles_bad_input
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path("demo"),
    customers: Annotated[int, typer.Option(help=(
        "Customers in the sample (with fewer than ~50,000 the past campaigns are too small to "
        "vouch for any offer's effect)"))] = 60_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    verbose: VerboseOpt = False,
) -> None:
    """Run everything end to end on a generated sample and print a summary."""
    from churn.demo import run_demo

    settings = _setup(verbose, None)
    run_demo(workdir, customers, seed, settings, echo=typer.echo)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

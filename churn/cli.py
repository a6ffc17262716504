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
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Point-in-time features and churn labels at each cutoff, stacked into one training set."""
    from features.build import build_feature_set, write_feature_set
    from features.io import load_crm

    settings = _setup(verbose, config)
    labels = _label_config(settings, horizon_days, definition)
    cutoffs = _dates(cutoff)
    fs = build_feature_set(load_crm(data), cutoffs, settings.features, labels)
    write_feature_set(fs, out)
    frame = fs.frame
    typer.echo(f"wrote {out}: {len(frame):,} rows, {len(fs.specs)} features, "
               f"{len(cutoffs)} cutoffs ({labels.definition}, {labels.horizon_days}-day horizon)")
    for c, group in frame.groupby("cutoff"):
        known = group["label"].notna()
        rate = f"{group.loc[known, 'label'].mean():.1%}" if known.any() else "not known yet"
        typer.echo(f"  {c.date()}  {len(group):>9,} customers  churn {rate}")


@app.command("demo")
@handles_bad_input
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Customers in the sample.")] = 20_000,
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

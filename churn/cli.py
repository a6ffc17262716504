"""The ``churn`` command: one front door for data, features, training, scoring and the demo.

Each subcommand (in ``churn/commands/``) parses its options, calls one function and reports.
Errors in the input end with a message that says what is wrong and a non-zero exit; nothing
half-written is left behind. This module holds the app, what the commands share, and the
registration of the command groups.
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

EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_IO = 3  # the disk is full, a path cannot be written, ...: the input may be fine

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML settings file.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress (to stderr).")]
SparkMasterOpt = Annotated[str | None, typer.Option(
    help="Spark master URL: local[N], spark://host:7077, yarn, k8s://... (default: the one "
         "spark-submit gives, else local[*]).")]
SparkConfOpt = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="A Spark setting KEY=VALUE (repeat), e.g. spark.executor.memory=4g; "
                         "spark.pyspark.python=PATH names the executors' Python.")]
SparkBucketsOpt = Annotated[int | None, typer.Option(
    help="Customer buckets of the Spark feature build (default: one per 50,000 customers, at "
         "least two per executor core).")]
ShipCodeOpt = Annotated[bool, typer.Option(
    help="Ship this project's code to the Spark executors (off: they must have it installed).")]


def _setup(verbose: bool, config: Path | None) -> Settings:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return load_settings(config)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handles_bad_input(fn):
    """Turn contract, settings and input errors into a clear message and exit code 2, a cluster
    or Spark job failure into one line and exit code 1, an I/O error (disk full, ...) into one
    line and exit code 3."""
    from features.contract import ContractError
    from jobs.spark_session import SparkJobError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ContractError as exc:
            _fail(str(exc))
        except (SettingsError, ValueError, FileNotFoundError) as exc:
            _fail(str(exc))
        except SparkJobError as exc:
            _fail(str(exc), EXIT_JOB_FAILED)
        except OSError as exc:  # after FileNotFoundError (bad input): disk full, permissions
            where = f" on {exc.filename}" if exc.filename else ""
            what = exc.strerror or " ".join(str(exc).split())
            _fail(f"I/O error{where}: {what}" + (f" (errno {exc.errno})" if exc.errno else ""),
                  EXIT_IO)

    return wrapper


def _dates(values: list[str]) -> list[date]:
    out = []
    for v in values:
        try:
            out.append(date.fromisoformat(v))
        except ValueError as exc:
            raise ValueError(f"--cutoff {v!r} is not a date (YYYY-MM-DD)") from exc
    return out


def _spark_options(master: str | None, conf: list[str] | None, buckets: int | None,
                   ship_code: bool = True):
    """The Spark options from the command line (``--spark-conf`` as KEY=VALUE pairs)."""
    from jobs.spark_session import SparkOptions

    pairs = []
    for item in conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf {item!r} is not KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    python = dict(pairs).get("spark.pyspark.python")
    return SparkOptions(master=master, conf=tuple(pairs), python=python, ship_code=ship_code,
                        buckets=buckets)


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


# The command groups use the helpers above, so they are registered after them. Top-level commands
# come first, then the named groups: the order `churn --help` lists them in.
from churn.commands import data, demo, features, monitor, score, serve, train  # noqa: E402

for _group in (serve, train, score, monitor, demo):
    app.add_typer(_group.app)
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

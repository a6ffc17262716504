"""The ``churn`` command: one front door for data, features, training, scoring and the demo.

Each subcommand (in ``churn/commands/``) parses its options, calls one function and reports.
Errors in the input end with a message that says what is wrong and a non-zero exit; nothing
half-written is left behind. This module holds the app, what the commands share, and the
registration of the command groups.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import traceback
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from churn.settings import Settings, load_settings
from features.errors import BadInput

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

app = typer.Typer(help="Customer churn prediction: find the customers about to leave, say why, "
                       "and which retention offer pays.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_OS_ERROR = 74  # EX_IOERR: the system refused (permission, disk full, ...): one line, path and reason
EXIT_INTERNAL = 70  # EX_SOFTWARE: our bug, reported as one
DIST_NAME = "churn-service"  # the project's name in pyproject.toml

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


class _Run:
    """The global options of this invocation (``churn --debug --quiet ...``)."""

    debug = False
    quiet = False


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"{DIST_NAME} {version(DIST_NAME)}")
        except PackageNotFoundError:
            typer.echo(f"{DIST_NAME} (not installed: no package metadata)")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an error, print the full traceback.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bars and no summary lines (stderr). Bars show only on "
                              "a terminal anyway; CHURN_PROGRESS=1 forces them on.")] = False,
) -> None:
    from features.progress import enabled, set_quiet

    _Run.debug, _Run.quiet = debug, quiet
    set_quiet(quiet)
    # MLflow's own bar (a model downloaded from a tracking server) follows ours: off in a log or
    # a pipe (it wrote a line per file there) and under --quiet, unless the caller set it
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true" if enabled() else "false")


def _setup(verbose: bool, config: Path | None) -> Settings:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return load_settings(config)


@contextlib.contextmanager
def summary(what: str, unit: str = "rows"):
    """Time a long job; at its end one summary line on stderr (rows, time, peak memory), unless
    ``--quiet``. The body sets ``.rows``."""
    from features.progress import measured

    with measured(what, unit) as job:
        yield job
    if not _Run.quiet:
        typer.echo(job.line(), err=True)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    if _Run.debug:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def handles_bad_input(fn):
    """Errors as a user should meet them: bad input (:class:`~features.errors.BadInput` and its
    domain errors, a missing file) is a message and exit 2; a cluster or Spark job failure one line
    and exit 1; a refusal of the system (permission, disk full) the path and reason, exit 74;
    anything else is our bug: one line, exit 70, the traceback under ``--debug``."""
    from jobs.spark_session import SparkJobError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits and usage errors (Exit is a RuntimeError)
        except (BadInput, FileNotFoundError) as exc:
            _fail(str(exc))
        except SparkJobError as exc:
            _fail(str(exc), EXIT_JOB_FAILED)
        except OSError as exc:  # after FileNotFoundError (bad input): disk full, permissions
            where = f" on {exc.filename}" if exc.filename else ""
            what = exc.strerror or _one_line(exc)
            _fail(f"I/O error{where}: {what}" + (f" (errno {exc.errno})" if exc.errno else ""),
                  EXIT_OS_ERROR)
        except Exception as exc:  # noqa: BLE001 - the last resort: our bug, said as such
            _fail(f"internal error (a bug): {_one_line(exc)}; run with --debug for the "
                  "traceback, please report it", EXIT_INTERNAL)

    return wrapper


def _dates(values: list[str]) -> list[date]:
    out = []
    for v in values:
        try:
            out.append(date.fromisoformat(v))
        except ValueError as exc:
            raise BadInput(f"--cutoff {v!r} is not a date (YYYY-MM-DD)") from exc
    twice = sorted({d for d in out if out.count(d) > 1})
    if twice:
        raise BadInput(f"--cutoff {', '.join(map(str, twice))} given more than once")
    return out


def _spark_options(master: str | None, conf: list[str] | None, buckets: int | None,
                   ship_code: bool = True):
    """The Spark options from the command line (``--spark-conf`` as KEY=VALUE pairs)."""
    from jobs.spark_session import SparkOptions

    pairs = []
    for item in conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--spark-conf {item!r} is not KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    python = dict(pairs).get("spark.pyspark.python")
    return SparkOptions(master=master, conf=tuple(pairs), python=python, ship_code=ship_code,
                        buckets=buckets)


def _label_config(settings: Settings, horizon_days: int | None, definition=None):
    """The settings' label definition with the command-line overrides applied (and checked)."""
    from pydantic import ValidationError

    from churn.options import value
    from features.config import LabelConfig

    overrides = {k: v for k, v in (("horizon_days", horizon_days), ("definition", value(definition)))
                 if v is not None}
    try:
        return LabelConfig(**{**settings.labels.model_dump(), **overrides})
    except ValidationError as exc:
        raise BadInput("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
                                   for e in exc.errors())) from exc


# The command groups use the helpers above, so they are registered after them. Top-level commands
# come first, then the named groups: the order `churn --help` lists them in.
from churn.commands import data, demo, features, monitor, offers, score, serve, train  # noqa: E402

for _group in (serve, train, score, monitor, demo):
    app.add_typer(_group.app)
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(offers.app, name="offers")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

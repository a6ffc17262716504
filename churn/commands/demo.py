"""`churn demo`: everything end to end on a generated sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.cli import VerboseOpt, _setup, handles_bad_input

app = typer.Typer()


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

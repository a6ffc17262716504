"""`churn data`: the sample CRM and the data-contract check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.cli import VerboseOpt, _setup, handles_bad_input, summary

app = typer.Typer(help="Sample data and data-contract checks.", no_args_is_help=True)


@app.command("generate")
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
    with summary("data generate") as job:
        counts = write_sample(generate(SampleSpec(customers, months, seed, start)), out)
        job.rows = sum(counts.values())
    typer.echo(f"wrote {out}/")
    for name, rows in counts.items():
        typer.echo(f"  {name:<28} {rows:>12,} rows")


@app.command("validate")
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

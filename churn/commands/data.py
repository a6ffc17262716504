"""`churn data`: the sample CRM and the data-contract check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.cli import ConfigOpt, VerboseOpt, _setup, handles_bad_input, summary

app = typer.Typer(help="Sample data and data-contract checks.", no_args_is_help=True)

AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="When the data was extracted (YYYY-MM-DD or an ISO timestamp; default: the "
                    "config's data.as_of): a timestamp after it (or after now) is refused, and a "
                    "cutoff is labelled only if its horizon ends by it (else by the data's latest "
                    "timestamp).")]


@app.command("generate")
@handles_bad_input
def data_generate(
    out: Annotated[Path, typer.Option(help="Folder to write the tables to.")] = Path("data/sample"),
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 20_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 7,
    start: Annotated[str, typer.Option(help="First month of the data.")] = "2024-01-01",
    partitioned: Annotated[bool | None, typer.Option(
        "--partitioned/--single-files", show_default=False, help=(
            "The layout; by default partitioned when --customers is more than one --block, "
            "single files otherwise. Partitioned: one folder per table with a part file per "
            "block of customers, generated and written block by block (memory set by --block, "
            "not by --customers: about 1 GB). Single files: one file per table, the whole "
            "sample generated in memory (about 7.5 GB at 1M customers)."))] = None,
    block: Annotated[int, typer.Option(help=(
        "Customers simulated together from one seed (part of the sample: another block size "
        "gives another sample)."))] = 100_000,  # features.sample.generate.BLOCK_CUSTOMERS
    campaigns: Annotated[str, typer.Option(help=(
        "Past retention campaigns: 'quarterly' (a fifth of the active customers picked at random, "
        "random offers, 20% held out) or 'programme' (every month, customers who look at risk "
        "picked more often, the offer following what seems to bother them, 10% held out; "
        "propensities recorded)."))] = "quarterly",
    verbose: VerboseOpt = False,
) -> None:
    """Write a realistic sample CRM (all six tables, plus _truth/ for evaluation).

    The layout follows the size: above one --block of customers, a part file per block, generated
    and written block by block (memory does not grow with --customers); up to one block, one file
    per table. --partitioned or --single-files forces either."""
    from features.sample import (
        SampleSpec,
        generate,
        parts_by_default,
        write_partitioned,
        write_sample,
    )

    _setup(verbose, None)
    with summary("data generate") as job:
        spec = SampleSpec(customers, months, seed, start, block, campaigns)
        parts = parts_by_default(spec) if partitioned is None else partitioned
        counts = write_partitioned(spec, out) if parts else write_sample(generate(spec), out)
        job.rows = sum(counts.values())
    typer.echo(f"wrote {out}/ ({_layout(spec, parts, chosen=partitioned is None)})")
    for name, rows in counts.items():
        typer.echo(f"  {name:<28} {rows:>12,} rows")


def _layout(spec, parts: bool, chosen: bool) -> str:
    """The layout written, and why: the default by size, or the option that forced it."""
    if parts:
        what = (f"{spec.blocks:,} part file{'s' if spec.blocks > 1 else ''} per table, one per "
                f"block of {spec.block:,} customers")
        why = ("the default above one block; --single-files for one file per table" if chosen
               else "--partitioned")
    else:
        what = "one file per table"
        why = (f"the default up to one block of {spec.block:,} customers; --partitioned for part "
               f"files" if chosen else "--single-files")
    return f"{what}: {why}"


@app.command("validate")
@handles_bad_input
def data_validate(
    source: Annotated[Path, typer.Argument(help="Folder of Parquet/CSV files or a DuckDB file.")],
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Check a data source against the contract; exit 2 with every problem listed."""
    from churn.settings import resolve_as_of
    from features.parallel import part_pool
    from features.stream import scan_source

    settings = _setup(verbose, config)
    declared = resolve_as_of(settings, as_of)
    with part_pool(settings.parallel.workers) as pool:  # the parts checked as the build would
        scan = scan_source(source, [], settings.features, as_of=declared, pool=pool)
    parts = (f" ({len(scan.parts)} customer partitions, {min(pool.workers, len(scan.parts))} "
             "checked at a time)" if len(scan.parts) > 1 else "")
    typer.echo(f"{source}: the data meets the contract{parts}")
    for name, rows in scan.rows.items():
        typer.echo(f"  {name:<12} {rows:>12,} rows")
    found = scan.latest_event if scan.latest_event is not None else scan.data_end
    typer.echo(f"  latest event {found}")
    typer.echo(f"  data ends    {declared if declared is not None else found}"
               f"{' (as-of date)' if declared is not None else ' (latest event)'}")

"""`churn score`: batch scoring of the customer base, from a feature table or raw CRM data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.cli import (
    ConfigOpt,
    ShipCodeOpt,
    SparkBucketsOpt,
    SparkConfOpt,
    SparkMasterOpt,
    VerboseOpt,
    _dates,
    _setup,
    _spark_options,
    handles_bad_input,
    summary,
)
from churn.options import Engine, ReasonsFrom, UnknownCategory
from features.errors import BadInput

app = typer.Typer()


@app.command("score")
@handles_bad_input
def score(
    out: Annotated[str, typer.Option(
        help="Output file (.parquet or .csv), a path or a URI (file://, s3a://, ...), written "
             "atomically.")],
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/churn@champion",
    features: Annotated[str | None, typer.Option(
        "--features", "--table", help="A table with the model's feature columns (path or URI).")
    ] = None,
    data: Annotated[str | None, typer.Option(
        help="Raw CRM data (a folder, path or URI): features built on the fly.")] = None,
    cutoff: Annotated[str | None, typer.Option(help="With --data: score as of this date.")] = None,
    id: Annotated[str, typer.Option("--id", help="Id column of the table.")] = "customer_id",
    campaign_budget: Annotated[float | None, typer.Option(
        help="Allocate offers across the base within this budget.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Rows per chunk (bounds memory).")] = 20_000,
    top_reasons: Annotated[int, typer.Option(help="Reasons per customer (0 = none).")] = 3,
    reasons_for: Annotated[ReasonsFrom, typer.Option(
        help="Give reasons to every customer (low) or from this risk band up (medium, high): "
             "reasons cost far more than scores.")] = ReasonsFrom.low,
    max_quarantine_share: Annotated[float, typer.Option(
        help="Fail when more rows than this share cannot be scored.")] = 0.01,
    unknown_category: Annotated[UnknownCategory, typer.Option(
        help="missing (score it as missing) or quarantine.")] = UnknownCategory.missing,
    catalogue: Annotated[Path | None, typer.Option(help="Offer catalogue YAML.")] = None,
    engine: Annotated[Engine, typer.Option(help="local or spark.")] = Engine.local,
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    spark_buckets: SparkBucketsOpt = None,
    ship_code: ShipCodeOpt = True,
    track: Annotated[bool, typer.Option(help="Log the run and its summary to MLflow.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Score the customer base: probability, risk band, reasons and offer for every customer."""
    settings = _setup(verbose, config)
    from jobs.runner import run_scoring_job

    if (features is None) == (data is None):
        raise BadInput("give either --features FILE (a feature table) or --data DIR with "
                       "--cutoff DATE")
    if data is not None and not cutoff:
        raise BadInput("--data needs --cutoff")
    bconfig = _batch_config(chunk_size, top_reasons, reasons_for.value, max_quarantine_share,
                            unknown_category.value, campaign_budget, id)
    with summary(f"score ({engine.value})") as job:
        done, loaded = run_scoring_job(
            model, out, bconfig, settings, features=features, data=data,
            cutoff=_dates([cutoff])[0] if cutoff else None, catalogue=catalogue,
            engine=engine.value,
            spark=_spark_options(spark_master, spark_conf, spark_buckets, ship_code), track=track,
            bands=settings.bands)
        job.rows = done.rows_in
    typer.echo(f"wrote {out}: {done.rows_scored:,} customers scored by {loaded.uri}, "
               f"{done.rows_quarantined:,} quarantined (of {done.rows_in:,} rows in)")
    typer.echo(f"  expected churners {done.expected_churners:,.0f}; offers "
               + ", ".join(f"{k} {v:,}" for k, v in done.offers.items())
               + f"; spend {done.spend:,.0f}; expected value saved "
               f"{done.expected_value_saved:,.0f} (net {done.expected_net_value:,.0f})")


def _batch_config(chunk_size: int, top_reasons: int, reasons_for: str,
                  max_quarantine_share: float, unknown_category: str,
                  campaign_budget: float | None, id_column: str):
    """The batch job's options, checked."""
    from jobs.batch import BatchConfig

    if chunk_size < 1 or not 0 <= max_quarantine_share <= 1:
        raise BadInput("--chunk-size must be positive and --max-quarantine-share in 0..1")
    return BatchConfig(chunk_size=chunk_size, top_reasons=top_reasons,
                       reasons_min_band=reasons_for, max_quarantine_share=max_quarantine_share,
                       unknown_category=unknown_category, campaign_budget=campaign_budget,
                       id_column=id_column)

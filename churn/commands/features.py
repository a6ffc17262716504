"""`churn features`: point-in-time feature sets for training, and the online store for serving."""

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
    _label_config,
    _setup,
    _spark_options,
    handles_bad_input,
    summary,
)
from churn.commands.data import AsOfOpt
from churn.options import ChurnDefinition, Engine
from features.errors import BadInput

app = typer.Typer(help="Point-in-time features and labels.", no_args_is_help=True)


@app.command("build")
@handles_bad_input
def features_build(
    data: Annotated[str, typer.Option(help="The CRM data source (a path or a URI).")],
    cutoff: Annotated[list[str], typer.Option(help="Cutoff date (repeat for several).")],
    out: Annotated[str, typer.Option(help="Output Parquet file (a path or a URI).")],
    horizon_days: Annotated[int | None, typer.Option(help="Label horizon in days.")] = None,
    definition: Annotated[ChurnDefinition | None, typer.Option(
        help="noncontractual (no order in the horizon) or contractual (cancel_date in it).")] = None,
    engine: Annotated[Engine, typer.Option(help="local (pandas) or spark.")] = Engine.local,
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    spark_buckets: SparkBucketsOpt = None,
    ship_code: ShipCodeOpt = True,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Point-in-time features and churn labels at each cutoff, stacked into one training set."""
    from churn.settings import resolve_as_of
    from features.build import require_rows, write_feature_set
    from jobs.spark_build import builds_on_parts
    from jobs.storage import check_writable, location, staged_output

    settings = _setup(verbose, config)
    labels = _label_config(settings, horizon_days, definition)
    declared = resolve_as_of(settings, as_of)
    cutoffs = _dates(cutoff)
    target = location(out)
    if target.suffix != ".parquet":
        raise BadInput(f"feature sets are written as .parquet, got {target.name}")
    check_writable(target)
    with summary(f"features build ({engine.value})") as job:
        if engine is Engine.local:
            per_cutoff, n_specs = _build_local(data, cutoffs, settings.features, labels, target,
                                               declared, job, settings.parallel.workers)
        elif builds_on_parts(data, target):
            per_cutoff, n_specs = _build_spark(data, cutoffs, settings.features, labels, target,
                                               declared, job, _spark_options(
                                                   spark_master, spark_conf, spark_buckets,
                                                   ship_code))
        else:  # one part, or remote: Spark reads the tables and buckets the customers itself
            fs = _feature_set(engine, data, cutoffs, settings.features, labels,
                              _spark_options(spark_master, spark_conf, spark_buckets, ship_code),
                              declared)
            require_rows(fs, cutoffs)
            with staged_output(target) as local_out:
                write_feature_set(fs, local_out)
            job.rows = len(fs.frame)
            per_cutoff, n_specs = _tally(fs.frame), len(fs.specs)
    typer.echo(f"wrote {out}: {job.rows:,} rows, {n_specs} features, "
               f"{len(cutoffs)} cutoffs ({labels.definition}, {labels.horizon_days}-day horizon)")
    for c, (rows, known, churned) in sorted(per_cutoff.items()):
        rate = f"{churned / known:.1%}" if known else "not known yet"
        typer.echo(f"  {c.date()}  {rows:>9,} customers  churn {rate}")


def _build_local(data: str, cutoffs, features, labels, target, as_of, job, workers=None):
    """The local engine: one customer partition of the source in memory at a time."""
    from features.stream import build_to_parquet
    from jobs.storage import local_copy, location, staged_output

    with local_copy(location(data)) as folder, staged_output(target) as local_out:
        built = build_to_parquet(folder, cutoffs, features, labels, local_out, as_of=as_of,
                                 workers=workers)
    job.rows = built.rows
    return built.per_cutoff, len(built.specs)


def _build_spark(data: str, cutoffs, features, labels, target, as_of, job, spark):
    """The Spark engine on a partitioned source on this machine (or a shared file system): the
    local engine's build with each part's work on the executors, written part by part (no
    feature set on the driver)."""
    from jobs.spark_build import spark_build_to_parquet
    from jobs.storage import local_copy, location, staged_output

    with local_copy(location(data)) as folder, staged_output(target) as local_out:
        built = spark_build_to_parquet(folder, cutoffs, features, labels, local_out,
                                       spark=spark, as_of=as_of)
    job.rows = built.rows
    return built.per_cutoff, len(built.specs)


def _tally(frame) -> dict:
    out = {}
    for c, group in frame.groupby("cutoff"):
        known = group["label"].notna()
        out[c] = [len(group), int(known.sum()), float(group.loc[known, "label"].sum())]
    return out


def _feature_set(engine: Engine, data: str, cutoffs, features, labels, spark, as_of=None):
    """The feature set built by the chosen engine (the same numbers either way); ``as_of`` (the
    declared extraction time) bounds the timestamps and is the data's end for the labels."""
    if engine is Engine.spark:
        from jobs.spark_features import spark_feature_set

        return spark_feature_set(data, cutoffs, features, labels, spark=spark, as_of=as_of)
    from features.build import build_feature_set
    from features.io import load_crm
    from jobs.storage import local_copy, location

    with local_copy(location(data)) as folder:
        crm = load_crm(folder, as_of=as_of)
    return build_feature_set(crm, cutoffs, features, labels, data_end=as_of)


@app.command("materialize")
@handles_bad_input
def features_materialize(
    data: Annotated[Path, typer.Option(help="The CRM data source.")],
    cutoff: Annotated[str, typer.Option(help="Features as of this date (usually today).")],
    store: Annotated[Path, typer.Option(help="The online store file (SQLite).")] = Path(
        "online_store.sqlite"),
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write every customer's latest features into the online store the service reads."""
    from churn.settings import resolve_as_of
    from features.build import build_feature_set
    from features.io import load_crm
    from features.store import SQLiteStore, materialize

    settings = _setup(verbose, config)
    with summary("features materialize") as job:
        crm = load_crm(data, as_of=resolve_as_of(settings, as_of))
        fs = build_feature_set(crm, _dates([cutoff]), settings.features, settings.labels,
                               population_only=False)
        fs.frame["cutoff"] = fs.frame["cutoff"].astype("datetime64[ns]")
        n = job.rows = materialize(fs.frame, fs.feature_names, store)
    written = SQLiteStore(store)  # read back: the stamp a running service will report
    typer.echo(f"wrote {store}: {n:,} customers, {len(fs.specs)} features as of {cutoff} "
               f"(version {written.stamp.version})")
    written.close()

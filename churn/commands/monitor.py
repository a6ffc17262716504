"""`churn monitor`: drift, back-test and offer readout report, with an exit code for alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.cli import ConfigOpt, VerboseOpt, _setup, handles_bad_input

app = typer.Typer()


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
    campaign_outcomes: Annotated[Path | None, typer.Option(
        help="A sent campaign's rows with their outcome (customer_id, offer_id, treated, "
             "outcome): its readout goes in the report.")] = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Drift and back-test report. Exit 0 = fine, 3 = an alert, 2 = bad input."""
    from jobs.monitor import run_monitor
    from jobs.runner import load_model

    settings = _setup(verbose, config)
    mconfig = settings.monitor
    if psi_alert is not None:
        mconfig = mconfig.model_copy(update={"psi_alert": psi_alert})
    result = run_monitor(load_model(model), features, report, mconfig, settings.bands,
                         scored=scored, data=data, track=track,
                         campaign_outcomes=campaign_outcomes)
    _report(report, result)
    raise typer.Exit(result.exit_code)


def _report(report: Path, result) -> None:
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
    if result.readout is not None:
        for _, r in result.readout.iterrows():
            typer.echo(f"campaign readout {r['offer_id']}: realised cut {r['realised_cut']:.3f} "
                       f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}], {r['verdict']}")
    for alert in result.alerts:
        typer.echo(f"ALERT {alert}")
    typer.echo(f"{len(result.alerts)} alerts, {len(d.warnings)} warnings")

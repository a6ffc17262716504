"""`churn offers`: plan a retention campaign that can be read, and read one that was sent.

``plan`` scores the base, allocates the budget, keeps a power-sized randomised hold-out per offer
and a test slice for unproven offers, records the assignment seed, and judges the policy on the
logged campaigns before anything is sent. ``readout`` reads a sent campaign's outcomes.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from churn.cli import ConfigOpt, VerboseOpt, _setup, handles_bad_input, summary
from features.errors import BadInput

app = typer.Typer(help="Retention campaigns: plan one that can be read, read one that was sent.",
                  no_args_is_help=True)

CatalogueOpt = Annotated[Path | None, typer.Option(help="Offer catalogue YAML.")]
MinEffectOpt = Annotated[float, typer.Option(
    help="Smallest cut in churn probability worth detecting (0.03 = 3 points).")]
AlphaOpt = Annotated[float, typer.Option(help="Two-sided significance level.")]


def _table_path(path: Path, what: str) -> Path:
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise BadInput(f"{what} must end in .parquet or .csv, got {path.name}")
    return path


def _write(frame, path: Path) -> None:
    from features.io import write_atomic

    if path.suffix.lower() == ".csv":
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _design_settings(**values):
    from pydantic import ValidationError

    from scoring.offers.design import DesignSettings

    try:
        return DesignSettings(**values)
    except ValidationError as exc:
        raise BadInput("; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}"
                                 for e in exc.errors())) from exc


@app.command("plan")
@handles_bad_input
def plan(
    data: Annotated[Path, typer.Option(help="Raw CRM data (folder): the base and past campaigns.")],
    budget: Annotated[float, typer.Option(help="What the campaign may spend.")],
    out: Annotated[Path, typer.Option(help="The campaign to send (.parquet or .csv).")],
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/churn@champion",
    cutoff: Annotated[str | None, typer.Option(
        help="Plan as of this date (default: the day after the data ends).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Assignment seed (default: drawn and recorded in the plan).")] = None,
    campaign_id: Annotated[str | None, typer.Option(help="The campaign's id.")] = None,
    min_effect: MinEffectOpt = 0.03,
    alpha: AlphaOpt = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect a cut of --min-effect.")] = 0.8,
    max_hold_out_share: Annotated[float, typer.Option(
        help="At most this share of an offer's customers is held out.")] = 0.5,
    test_share: Annotated[float, typer.Option(
        help="Share of the budget for the test slices of unproven offers.")] = 0.05,
    readouts: Annotated[list[Path] | None, typer.Option(
        "--readouts", help="Evidence tables of earlier readouts (repeat): their verdicts count.")
    ] = None,
    challenger: Annotated[str | None, typer.Option(
        help="Another model URI whose policy is judged too.")] = None,
    risk_offer: Annotated[str | None, typer.Option(
        help="The offer risk-only targeting sends (default: the catalogue's first).")] = None,
    catalogue: CatalogueOpt = None,
    track: Annotated[bool, typer.Option(help="Log the plan and the estimates to MLflow.")] = True,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Plan a campaign with hold-outs sized to prove its offers, judged before it is sent."""
    import pandas as pd

    from churn.campaigns import make_plan

    settings = _setup(verbose, config)
    design = _design_settings(min_effect=min_effect, alpha=alpha, power=power,
                              max_hold_out_share=max_hold_out_share, test_share=test_share)
    _table_path(out, "--out")
    seed = secrets.randbelow(2**31) if seed is None else seed
    with summary("offers plan", "customers") as job:
        result = make_plan(model, data, budget, design, seed, settings,
                           cutoff=pd.Timestamp(cutoff) if cutoff else None,
                           campaign_id=campaign_id, readouts=readouts or [],
                           challenger=challenger, risk_offer=risk_offer, catalogue=catalogue,
                           track=track)
        _write(result.assignment, out)
        job.rows = result.base_size
    a = result.assignment
    typer.echo(f"wrote {out}: campaign {result.campaign_id} (assignment seed {seed}): "
               f"{len(a):,} of {result.base_size:,} customers selected, {int(a['treated'].sum()):,} "
               f"sent, {int((~a['treated']).sum()):,} held out; spend {a['cost'].sum():,.0f} of "
               f"{budget:,.0f}; expected net value {result.expected_net_value:,.0f}")
    for _, r in result.design.statements.iterrows():
        typer.echo(f"  {r['offer_id']} ({r['arm']}, {r['status']}): {r['treated']:,} sent, "
                   f"{r['hold_out']:,} held out; {r['statement']}")
    _echo_judgement(result.judgement)


def _echo_judgement(table) -> None:
    if table is None:
        typer.echo("policies not judged: no past campaign with known outcomes")
        return
    r0 = table.iloc[0]
    typer.echo(f"policies judged on {int(r0['campaigns'])} past campaigns "
               f"({int(r0['customers']):,} customers), net value per customer, 95% interval:")
    for _, r in table.iterrows():
        gain = ("" if r["policy"] == "no offer" else
                f"; vs no offer {r['gain']:+.2f} [{r['gain_low']:+.2f}, {r['gain_high']:+.2f}]")
        typer.echo(f"  {r['policy']:<11} {r['estimator']:<3} {r['value']:9.2f} "
                   f"[{r['low']:.2f}, {r['high']:.2f}]{gain}")


@app.command("readout")
@handles_bad_input
def readout(
    outcomes: Annotated[Path | None, typer.Option(
        help="The sent campaign's rows with their outcome (customer_id, offer_id, treated, "
             "outcome = 1 if the customer churned).")] = None,
    campaign: Annotated[Path | None, typer.Option(
        help="The sent campaign (as `offers plan` wrote it); outcomes from --data.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="With --campaign: raw CRM data after the campaign (outcome: gone).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Evidence table for the next training (.parquet or .csv).")] = None,
    report: Annotated[Path | None, typer.Option(help="HTML readout report.")] = None,
    min_effect: MinEffectOpt = 0.03,
    alpha: AlphaOpt = 0.05,
    catalogue: CatalogueOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Read a sent campaign: realised effect per offer with its interval, against the model's,
    net value, and a verdict (proven, disproven, unknown). Exit 2 on bad input."""
    from churn.campaigns import read_sent_campaign

    settings = _setup(verbose, config)
    if (outcomes is None) == (campaign is None):
        raise BadInput("give either --outcomes FILE (campaign rows with their outcome) or "
                       "--campaign FILE with --data DIR")
    if campaign is not None and data is None:
        raise BadInput("--campaign needs --data (the CRM data the outcomes come from)")
    if out is not None:
        _table_path(out, "--out")
    result = read_sent_campaign(outcomes=outcomes, campaign=campaign, data=data,
                                min_effect=min_effect, alpha=alpha, catalogue=catalogue,
                                settings=settings)
    if out is not None:
        _write(result.evidence, out)
    if report is not None:
        from jobs.monitor_report import write_readout_report

        write_readout_report(report, f"Campaign readout {result.campaign_id}", result.readout,
                             result.calibration)
    for _, r in result.readout.iterrows():
        predicted = (f"predicted {r['predicted_cut']:+.3f}" if r["predicted_cut"] == r["predicted_cut"]
                     else "no predicted cut recorded")
        net = (f"net value realised {r['realised_net_value']:,.0f}"
               if r["realised_net_value"] == r["realised_net_value"]
               else "net value unknown (no customer_value recorded)")
        typer.echo(f"{r['offer_id']}: {r['verdict']}: churn cut {r['realised_cut']:+.3f} "
                   f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] ({r['treated']:,} sent, "
                   f"{r['hold_out']:,} held out); {predicted}; {net}")
    typer.echo("wrote " + ", ".join(str(p) for p in (out, report) if p is not None)
               if out or report else "nothing written (no --out, no --report)")

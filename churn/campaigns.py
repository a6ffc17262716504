"""Campaign wiring for `churn offers`: the model, the CRM data and the pure campaign functions.

``make_plan``: score the base at a date, design the campaign (``scoring.offers.design``), judge the
policies on the logged campaigns (``training.policy_evaluation``), log to MLflow.
``read_sent_campaign``: the outcomes of a sent campaign (given, or from the CRM data once they
have matured) read by ``scoring.offers.readout``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.offers.design import CampaignDesign, CampaignError, DesignSettings

log = logging.getLogger(__name__)


@dataclass
class PlanResult:
    assignment: pd.DataFrame
    design: CampaignDesign
    judgement: pd.DataFrame | None
    campaign_id: str
    base_size: int
    expected_net_value: float


def _status(models, evidence: pd.DataFrame) -> dict[str, str]:
    from scoring.offers.design import DISPROVEN, PROVEN, offer_status
    from training.readouts import latest_verdicts

    sources = {k: (m.source, m.scale) for k, m in models.items()}
    known = {k: DISPROVEN if m.metrics.get("readout_disproven") else PROVEN
             for k, m in models.items()
             if m.metrics.get("readout_disproven") or m.metrics.get("readout_proven")}
    return offer_status(sources, {**known, **latest_verdicts(evidence)})


def make_plan(model_uri: str, data: Path, budget: float, design: DesignSettings, seed: int,
              settings, cutoff: pd.Timestamp | None = None, campaign_id: str | None = None,
              readouts: list[Path] | None = None, challenger: str | None = None,
              risk_offer: str | None = None, catalogue: Path | None = None,
              track: bool = True) -> PlanResult:
    from features.build import build_feature_set
    from features.io import load_crm
    from jobs.runner import load_model
    from scoring.core import ScoringCore
    from scoring.offers.catalogue import load_catalogue
    from scoring.offers.design import assignment_frame, design_campaign
    from scoring.offers.judge import model_options
    from scoring.offers.policy import eligible_block
    from scoring.offers.uplift import UpliftModels
    from training.readouts import read_evidence

    cat = load_catalogue(catalogue)
    if risk_offer is not None and risk_offer not in cat.ids:
        raise CampaignError(f"--risk-offer {risk_offer!r} is not in the catalogue ({cat.ids})")
    evidence = read_evidence(readouts or [])
    loaded = load_model(model_uri)
    core = ScoringCore(loaded, cat, bands=settings.bands)
    crm = load_crm(data)
    when = pd.Timestamp(cutoff) if cutoff is not None else crm.data_end.normalize() + \
        pd.Timedelta(days=1)
    scorer = loaded.scorer
    features = scorer.feature_config(settings.features)
    labels = settings.labels
    base = build_feature_set(crm, [when], features, labels).frame
    if base.empty:
        raise CampaignError(f"no active customer at {when.date()} to plan a campaign for")
    x = scorer.matrix(base)
    opts, p, value = model_options(core, x)
    customers = core.customers(x, p)
    ok = eligible_block(customers, cat.arrays) & ~opts.cooling[:, None]
    models = (loaded.uplift or UpliftModels.priors_only(cat, "no uplift models")).models
    status = _status(models, evidence)
    plan = design_campaign(opts, ok, p, cat, budget, status, design, seed)
    cid = campaign_id or f"campaign-{when.date()}-{seed}"
    assignment = assignment_frame(plan, base["customer_id"], cat, opts, value, cid, when)
    sent = np.flatnonzero(plan.treated)
    expected = float(opts.net[sent, plan.offer[sent]][np.isfinite(
        opts.net[sent, plan.offer[sent]])].sum()) if len(sent) else 0.0
    judgement = _judge(crm, core, features, labels, budget / len(base), risk_offer, challenger)
    if track:
        _track(loaded.uri, cid, seed, budget, design, plan, judgement, challenger)
    return PlanResult(assignment, plan, judgement, cid, len(base), expected)


def _judge(crm, core, features, labels, spend_per_customer: float, risk_offer: str | None,
           challenger: str | None) -> pd.DataFrame | None:
    from jobs.runner import load_model
    from scoring.core import ScoringCore
    from training.policy_evaluation import evaluate_policies
    from training.uplift import campaign_data

    logged = campaign_data(crm, core.model.scorer, features, labels, core.catalogue.uplift)
    if logged is None or logged.frame.empty:
        return None
    rival = ScoringCore(load_model(challenger), core.catalogue) if challenger else None
    return evaluate_policies(logged, crm.offers, core, spend_per_customer, risk_offer, rival)


def _track(model_uri: str, campaign_id: str, seed: int, budget: float, design: DesignSettings,
           plan: CampaignDesign, judgement: pd.DataFrame | None, challenger: str | None) -> None:
    import tempfile

    import mlflow

    from scoring.model_store import experiment_id, use_tracking
    from training.policy_evaluation import log_policy_evaluation

    use_tracking()
    with mlflow.start_run(experiment_id=experiment_id("churn-campaigns"),
                          run_name=f"plan {campaign_id}"):
        mlflow.log_params({"model_uri": model_uri, "campaign_id": campaign_id,
                           "assignment_seed": seed, "budget": budget,
                           "challenger": challenger or "", **design.model_dump()})
        for _, r in plan.statements.iterrows():
            for k in ("treated", "hold_out", "detectable_cut"):
                if pd.notna(r[k]) and np.isfinite(float(r[k])):
                    mlflow.log_metric(f"design.{r['offer_id']}.{r['arm']}.{k}", float(r[k]))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "design.csv"
            plan.statements.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
        if judgement is not None:
            log_policy_evaluation(judgement)


@dataclass
class ReadoutResult:
    readout: pd.DataFrame
    calibration: pd.DataFrame | None
    evidence: pd.DataFrame
    campaign_id: str


def campaign_outcomes(campaign: pd.DataFrame, data: Path, settings, catalogue) -> pd.DataFrame:
    """The campaign's rows with their outcome (gone, see ``UpliftSettings``) from the CRM data,
    once the horizon after the campaign has passed."""
    from features.io import load_crm
    from training.uplift import gone_outcome

    for column in ("customer_id", "sent_ts"):
        if column not in campaign.columns:
            raise CampaignError(f"the campaign has no column {column}; it has "
                                f"{list(campaign.columns)[:8]}")
    crm = load_crm(data)
    frame = campaign.assign(customer_id=campaign["customer_id"].astype(str),
                            campaign=pd.to_datetime(campaign["sent_ts"]).dt.normalize())
    wait = pd.Timedelta(days=settings.labels.horizon_days + catalogue.uplift.gone_after_days)
    late = frame["campaign"].max() + wait
    if crm.data_end < late:
        raise CampaignError(f"the outcomes of the campaign sent {frame['campaign'].max().date()} "
                            f"have not matured: the data ends {crm.data_end.date()}, they are "
                            f"known from {late.date()}")
    return frame.assign(outcome=gone_outcome(crm, frame, settings.labels, catalogue.uplift))


def read_sent_campaign(outcomes: Path | None, campaign: Path | None, data: Path | None,
                       min_effect: float, alpha: float, catalogue: Path | None,
                       settings) -> ReadoutResult:
    from features.io import read_frame
    from jobs.monitoring import campaign_readout
    from scoring.offers.catalogue import load_catalogue
    from scoring.offers.readout import evidence_table

    cat = load_catalogue(catalogue)
    if outcomes is not None:
        frame, source = read_frame(outcomes), outcomes.name
    else:
        frame, source = campaign_outcomes(read_frame(campaign), data, settings, cat), campaign.name
    table, calibration = campaign_readout(frame, cat, min_effect, alpha, source)
    cid = str(frame["campaign_id"].iloc[0]) if "campaign_id" in frame.columns else source
    sent = pd.to_datetime(frame["sent_ts"]).min() if "sent_ts" in frame.columns else None
    return ReadoutResult(table, calibration, evidence_table(table, cid, sent), cid)

"""Judge offer policies on the logged campaigns before any is sent (off-policy evaluation).

The campaigns of the training data (``training.uplift.campaign_data``: features at each campaign
date and the outcome after it) become a log: each customer's action (the offer if sent, nothing if
held out), its propensity (recorded by ``churn offers plan``, else estimated for the uniform
randomisation of older campaigns), and the net value that followed. The current policy, risk-only,
no offer (and a challenger's policy) are judged on it by IPS and doubly robust estimates
(``scoring.offers.ope``), with the same spend per customer, and logged to MLflow.

At training time the effects were learnt from these same campaigns: the estimate of the current
policy is then in-sample (optimistic); the ones of risk-only and no offer are not.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.catalogue import Catalogue
from scoring.offers.design import CampaignError
from scoring.offers.judge import policy_actions
from scoring.offers.ope import LoggedCampaigns, judge_policies, logged_propensity, rewards
from scoring.offers.policy import NO_OFFER
from scoring.offers.uplift import UpliftModels
from scoring.scorer import ChurnScorer
from training.uplift import CampaignData

log = logging.getLogger(__name__)


def _propensity(frame: pd.DataFrame, offers: pd.DataFrame) -> np.ndarray:
    """Each logged row's propensity, from the whole offers table (campaign day, customer, offer)."""
    table = offers.assign(campaign=pd.to_datetime(offers["sent_ts"]).dt.normalize(),
                          _p=logged_propensity(offers))
    key = ["customer_id", "campaign", "offer_id"]
    found = frame[key].astype({"customer_id": str, "offer_id": str}).merge(
        table.astype({"customer_id": str, "offer_id": str})
        .drop_duplicates(key)[[*key, "_p"]], on=key, how="left")["_p"]
    if found.isna().any():
        raise CampaignError(f"{int(found.isna().sum())} logged campaign rows have no propensity")
    return found.to_numpy(float)


def evaluate_policies(data: CampaignData, offers: pd.DataFrame, core: ScoringCore,
                      spend_per_customer: float | None = None, risk_offer: str | None = None,
                      challenger: ScoringCore | None = None, alpha: float = 0.05
                      ) -> pd.DataFrame:
    """IPS and DR value per customer of each policy on the logged campaigns (see
    ``scoring.offers.ope.judge_policies``)."""
    frame, catalogue = data.frame, core.catalogue
    unknown = sorted(set(frame["offer_id"].astype(str)) - set(catalogue.ids))
    if unknown:
        raise CampaignError(f"the offers table has offers unknown to the catalogue: {unknown[:5]} "
                            f"(the catalogue has {catalogue.ids}); their campaigns cannot be "
                            "used to judge a policy")
    j = pd.Index(catalogue.ids).get_indexer(frame["offer_id"].astype(str))
    treated = frame["treated"].astype(bool).to_numpy()
    held = pd.Series(~treated).groupby(pd.to_datetime(frame["campaign"]).to_numpy()).sum()
    if (held == 0).any():
        days = [str(pd.Timestamp(d).date()) for d in held.index[held == 0]]
        raise CampaignError(f"campaign {', '.join(days[:3])} has no hold-out: what sending "
                            "nothing would have done cannot be read from it, so it cannot judge "
                            "a policy (plan campaigns with `churn offers plan`, which keeps one)")
    action = np.where(treated, j, NO_OFFER)
    costs = catalogue.costs
    if spend_per_customer is None:  # as much as the logged campaigns spent per customer
        spend_per_customer = float(costs[j[treated]].sum() / len(frame))
    groups = pd.to_datetime(frame["campaign"]).to_numpy()
    actions, q = policy_actions(core, frame, groups, spend_per_customer,
                                risk_offer or catalogue.ids[0], challenger)
    value = core.customer_values(data.x)
    logged = LoggedCampaigns(action, _propensity(frame, offers),
                             rewards(frame["outcome"].to_numpy(float), value, action, costs), q)
    table = judge_policies(logged, actions, alpha)
    table["spend_per_customer"] = spend_per_customer
    table["customers"] = len(frame)
    table["campaigns"] = len(np.unique(groups))
    return table


def log_policy_evaluation(table: pd.DataFrame) -> None:
    """The estimates as metrics ``ope.<policy>.<estimator>.<value|low|high|gain...>`` and a CSV,
    in the active MLflow run."""
    metrics = {}
    for _, r in table.iterrows():
        name = str(r["policy"]).replace(" ", "_")
        for k in ("value", "low", "high", "gain", "gain_low", "gain_high", "matched"):
            if k in r and np.isfinite(r[k]):
                metrics[f"ope.{name}.{r['estimator']}.{k}"] = float(r[k])
    mlflow.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy_evaluation.csv"
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def judge_at_training(data: CampaignData | None, offers: pd.DataFrame | None, scorer: ChurnScorer,
                      uplift: UpliftModels, catalogue: Catalogue) -> pd.DataFrame | None:
    """The call the training run makes after fitting the uplift models: judge the policies on the
    campaigns it learnt from and log the estimates (a failure is logged, never fatal)."""
    if data is None or offers is None or data.frame.empty:
        return None
    try:
        core = ScoringCore(LoadedModel(scorer, "", None, None, None, uplift), catalogue)
        table = evaluate_policies(data, offers, core)
    except CampaignError as exc:
        log.warning("policy evaluation skipped: %s", exc)
        return None
    log_policy_evaluation(table)
    return table

"""Uplift: how much each offer changes each customer's churn probability, from past campaigns.

From the ``offers`` table (randomised: treated vs. hold-out) and the churn labels that followed:
features at each campaign's date (strictly before it), label over the horizon after it. Per offer,
the reason-matched logistic model of ``serving.offers.uplift`` is fitted by Newton's method with
the churn model's log-odds as offset (three parameters: a calibration shift ``c`` shared with the
hold-out customers, the offer's average effect ``a`` and how it grows with the risk the offer
addresses ``b``). The latest campaign with complete labels is held out and scored with Qini curves.
An offer with too few customers in its campaigns falls back to the catalogue's prior, and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.crm import CrmData
from serving.offers.catalogue import Catalogue
from serving.offers.uplift import LEARNT, PRIOR, OfferEffectModel, UpliftModels, reason_scores
from serving.scorer import ChurnScorer

log = logging.getLogger(__name__)

@dataclass
class CampaignData:
    frame: pd.DataFrame  # customer_id, campaign, offer_id, treated, label
    x: np.ndarray  # the churn model's feature matrix for those rows
    holdout: np.ndarray  # rows of the held-out (latest complete) campaign


def campaign_data(crm: CrmData, scorer: ChurnScorer, features: FeatureConfig,
                  labels: LabelConfig) -> CampaignData | None:
    """One row per customer selected in a campaign whose outcome is known."""
    offers = crm.offers
    if offers is None or offers.empty:
        return None
    offers = offers.assign(campaign=offers["sent_ts"].dt.normalize())
    end = crm.data_end
    complete = sorted(c for c in offers["campaign"].unique()
                      if pd.Timestamp(c) + pd.Timedelta(days=labels.horizon_days) <= end)
    if len(complete) < 2:
        log.info("uplift: fewer than two campaigns with complete outcomes; priors only")
        return None
    fs = build_feature_set(crm, complete, features, labels, population_only=False)
    rows = offers[offers["campaign"].isin(complete)][["customer_id", "campaign", "offer_id",
                                                      "treated"]]
    frame = rows.merge(fs.frame.rename(columns={"cutoff": "campaign"}),
                       on=["customer_id", "campaign"], how="inner")
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    x = scorer.matrix(frame)
    return CampaignData(frame, x, (frame["campaign"] == complete[-1]).to_numpy())


def qini(effect: np.ndarray, treated: np.ndarray, stayed: np.ndarray) -> tuple[np.ndarray, float]:
    """Qini curve (extra customers kept vs. the hold-out, by benefit rank) and its coefficient.

    ``effect`` is the predicted change in churn probability (negative = helps), so customers are
    ranked by ``-effect``. The coefficient is the area between the curve and the random line,
    as a share of the number of customers (positive = better than random targeting).
    """
    order = np.argsort(effect, kind="stable")
    t, s = treated[order].astype(float), stayed[order].astype(float)
    nt, nc = np.cumsum(t), np.cumsum(1 - t)
    kept_t, kept_c = np.cumsum(s * t), np.cumsum(s * (1 - t))
    curve = kept_t - kept_c * np.divide(nt, nc, out=np.zeros_like(nt), where=nc > 0)
    n = len(curve)
    random_line = curve[-1] * np.arange(1, n + 1) / n
    return curve, float((curve - random_line).sum() / n / n) if n else 0.0


def fit_offset_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, ridge: float = 1e-2,
                        iterations: int = 50) -> np.ndarray:
    """Logistic regression with an offset, by Newton's method (a small ridge keeps it stable)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        mu = 1.0 / (1.0 + np.exp(-(offset + x @ beta)))
        w = mu * (1 - mu)
        hessian = x.T @ (x * w[:, None]) + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, x.T @ (y - mu) - ridge * beta)
        beta += step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def fit_uplift(data: CampaignData | None, scorer: ChurnScorer,
               catalogue: Catalogue) -> tuple[UpliftModels, dict[str, float]]:
    """Per offer the reason-matched model (or the prior when history is thin), with Qini on the
    held-out campaign."""
    if data is None:
        return UpliftModels.priors_only(catalogue, "no campaign history with known outcomes"), {}
    frame = data.frame
    treated = frame["treated"].astype(bool).to_numpy().astype(float)
    y = frame["label"].to_numpy(float)
    p = scorer.predict(data.x)
    offset = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    families = [scorer.spec(f).family for f in scorer.features]
    z = reason_scores(scorer.contributions(data.x), families)
    models, metrics = {}, {}
    for offer in catalogue.offers:
        mine = (frame["offer_id"] == offer.id).to_numpy()
        train = mine & ~data.holdout
        n_t, n_c = int((train & (treated == 1)).sum()), int((train & (treated == 0)).sum())
        if min(n_t, n_c) < catalogue.min_campaign_size:
            note = (f"prior: only {n_t} treated and {n_c} hold-out customers in past campaigns "
                    f"(needs {catalogue.min_campaign_size} of each)")
            log.info("uplift %s: %s", offer.id, note)
            models[offer.id] = OfferEffectModel(offer.id, PRIOR, note)
            continue
        reason = next((r for r in offer.addresses if r != "any"), "any")
        zr = z[reason] if reason != "any" else np.zeros(len(y))
        design = np.column_stack([np.ones(train.sum()), treated[train],
                                  treated[train] * zr[train]])
        c, a, b = fit_offset_logistic(design, y[train], offset[train])
        model = OfferEffectModel(offer.id, LEARNT,
                                 f"reason-matched ({reason}) model on {n_t} treated and {n_c} "
                                 "hold-out customers", reason, float(c), float(a), float(b))
        test = mine & data.holdout
        if test.sum() > 50 and 0 < treated[test].mean() < 1:
            zt = {reason: zr[test]}
            effect = model.effect(p[test], zt, offer.prior_effect)
            _, coef = qini(effect, treated[test] == 1, 1 - y[test])
            y_c, y_t = y[test & (treated == 0)], y[test & (treated == 1)]
            observed = y_c.mean() - y_t.mean()
            se = float(np.sqrt(y_c.var(ddof=1) / len(y_c) + y_t.var(ddof=1) / len(y_t))) \
                if min(len(y_c), len(y_t)) > 1 else np.inf
            shown = observed - catalogue.evidence_z * se  # the cut the campaign vouches for
            predicted = -effect[treated[test] == 1].mean()
            model.scale = float(np.clip(shown / predicted, 0.0, 1.0)) if predicted > 0 else 0.0
            if model.scale == 0.0:
                model.note += (f"; not used: the held-out campaign does not show it works "
                               f"(observed cut {observed:+.3f} +/- {se:.3f})")
            model.metrics = {"qini": coef, "predicted_mean_effect": float(effect.mean()),
                             "observed_churn_cut": float(observed), "observed_cut_se": se,
                             "scale": model.scale, "holdout_rows": int(test.sum())}
            metrics.update({f"uplift.{offer.id}.{k}": float(v) for k, v in model.metrics.items()})
        else:
            model.note += "; no held-out campaign to check it on (not shrunk)"
        log.info("uplift %s: %s (c %.3f a %.3f b %.3f) %s", offer.id, model.note, c, a, b,
                 model.metrics)
        models[offer.id] = model
    return UpliftModels(models), metrics

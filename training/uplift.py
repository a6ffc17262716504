"""Uplift: how much each offer changes each customer's churn probability, from past campaigns.

From the ``offers`` table (randomised: treated vs. hold-out) and what happened next: features at
each campaign's date (strictly before it), and the campaign outcome after it (by default *gone*:
cancelled within the horizon, or for customers without a contract no sign of life in the
``gone_after_days`` after the horizon; see ``UpliftSettings``). The logistic model of
``scoring.offers.uplift`` (the churn model's log-odds as offset, a ridge-penalised linear risk
correction and effect on the standardised features) is fitted by Newton's method, pooled across
offers by default (``fit_pooled``): the risk correction is shared, so every offer's hold-out (and
treated rows, through a treated intercept per offer) tells what happens without an offer, and
each offer keeps its own effect; ``pooled=False`` fits one model per offer on its own rows.

Evidence: every campaign is predicted by a model fitted on the other campaigns (leave one campaign
out); the churn cut those campaigns show (treated vs. hold-out, within each campaign, pooled) is
compared with the cut the models predicted, and the learnt effect is shrunk to what the evidence
vouches for. Qini curves use the same out-of-campaign predictions. An offer with too few customers
in its campaigns falls back to the catalogue's prior, and says so.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.crm import CrmData
from features.numeric import logit
from scoring.offers.catalogue import (
    ALWAYS_FAMILIES,
    REASON_FAMILIES,
    Catalogue,
    Offer,
    UpliftSettings,
)
from scoring.offers.uplift import (
    LEARNT,
    LOGIT_EPS,
    PRIOR,
    OfferEffectModel,
    UpliftModels,
    standardise,
)
from scoring.scorer import ChurnScorer
from training.effect_fit import fit_offer, fit_pooled

log = logging.getLogger(__name__)


@dataclass
class CampaignData:
    frame: pd.DataFrame  # customer_id, campaign, offer_id, treated, outcome
    x: np.ndarray  # the churn model's feature matrix for those rows
    outcome: str = "label"  # what ``frame["outcome"]`` is (UpliftSettings.outcome)


def gone_outcome(crm: CrmData, frame: pd.DataFrame, labels: LabelConfig,
                 settings: UpliftSettings) -> np.ndarray:
    """1 when the customer had gone by the end of the horizon after the campaign: cancelled in
    (t, t + h], or (no contract) no sign of life in (t + h, t + h + gone_after_days]."""
    h = pd.Timedelta(days=labels.horizon_days)
    w = pd.Timedelta(days=settings.gone_after_days)
    customers = crm.customers.set_index("customer_id")
    ids = frame["customer_id"]
    t = frame["campaign"].to_numpy("datetime64[ns]")
    cancel = (customers["cancel_date"].reindex(ids).to_numpy("datetime64[ns]")
              if "cancel_date" in customers.columns else np.full(len(frame), np.datetime64("NaT")))
    cancelled = (cancel > t) & (cancel <= t + h.to_timedelta64())
    contract = (customers[labels.contract_flag].reindex(ids).fillna(False).to_numpy(bool)
                if labels.contract_flag in customers.columns else np.zeros(len(frame), bool))
    # signs of life: orders, and engagement events that are not passive (no copy of the tables)
    signs = [(crm.orders["customer_id"], crm.orders["order_ts"].to_numpy("datetime64[ns]"), None)]
    if crm.engagement is not None and len(crm.engagement):
        e = crm.engagement
        live = ~e["event_type"].astype(str).isin(settings.passive_events).to_numpy()
        if "value" in e.columns:
            live &= e["value"].fillna(1.0).to_numpy(float) != 0  # e.g. a month with 0 active days
        signs.append((e["customer_id"], e["event_ts"].to_numpy("datetime64[ns]"), live))
    quiet = np.ones(len(frame), dtype=bool)
    for c in np.unique(t):
        lo, hi = c + h.to_timedelta64(), c + (h + w).to_timedelta64()
        alive = [ids_[(ts > lo) & (ts <= hi) & (True if ok is None else ok)].unique()
                 for ids_, ts, ok in signs]
        rows = t == c
        quiet[rows] = ~ids[rows].isin(np.concatenate(alive)).to_numpy()
    return (cancelled | (~contract & quiet)).astype(np.float64)


def campaign_data(crm: CrmData, scorer: ChurnScorer, features: FeatureConfig,
                  labels: LabelConfig, settings: UpliftSettings | None = None
                  ) -> CampaignData | None:
    """One row per customer selected in a campaign whose outcome is known."""
    settings = settings or UpliftSettings()
    offers = crm.offers
    if offers is None or offers.empty:
        return None
    offers = offers.assign(campaign=offers["sent_ts"].dt.normalize())
    end = crm.data_end
    wait = labels.horizon_days + (settings.gone_after_days if settings.outcome == "gone" else 0)
    complete = sorted(c for c in offers["campaign"].unique()
                      if pd.Timestamp(c) + pd.Timedelta(days=wait) <= end)
    if len(complete) < 2:
        log.info("uplift: fewer than two campaigns with complete outcomes; priors only")
        return None
    fs = build_feature_set(crm, complete, features, labels, population_only=False)
    rows = offers[offers["campaign"].isin(complete)][["customer_id", "campaign", "offer_id",
                                                      "treated"]]
    frame = rows.merge(fs.frame.rename(columns={"cutoff": "campaign"}),
                       on=["customer_id", "campaign"], how="inner")
    frame["outcome"] = (gone_outcome(crm, frame, labels, settings) if settings.outcome == "gone"
                        else frame["label"].to_numpy(float))
    frame = frame[frame["outcome"].notna()].reset_index(drop=True)
    return CampaignData(frame, scorer.matrix(frame), settings.outcome)


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


def effect_columns(offer: Offer, families: list[str], settings: UpliftSettings) -> np.ndarray:
    """The model features an offer's effect may vary with (see ``effect_features``)."""
    fams = np.asarray(families)
    if settings.effect_features == "all" or "any" in offer.addresses:
        return np.ones(len(fams), dtype=bool)
    wanted = [f for r in offer.addresses for f in REASON_FAMILIES.get(r, ())]
    return np.isin(fams, wanted + list(ALWAYS_FAMILIES))


def _pooled_cut(y: np.ndarray, treated: np.ndarray, campaign: np.ndarray
                ) -> tuple[float, float, int]:
    """Hold-out minus treated outcome rate within each campaign, pooled by size; its standard
    error; the number of campaigns that had both arms."""
    num = den = var = 0.0
    used = 0
    for c in np.unique(campaign):
        rows = campaign == c
        yc, yt = y[rows & (treated == 0)], y[rows & (treated == 1)]
        if min(len(yc), len(yt)) < 2:
            continue
        n = rows.sum()
        num += n * (yc.mean() - yt.mean())
        var += n * n * (yc.var(ddof=1) / len(yc) + yt.var(ddof=1) / len(yt))
        den += n
        used += 1
    return (num / den, float(np.sqrt(var) / den), used) if den else (0.0, np.inf, 0)


@dataclass
class UpliftFit:
    models: UpliftModels
    metrics: dict[str, float]
    held_out: dict[str, np.ndarray]  # per checked offer: each campaign row's out-of-campaign
    #                                  effect (NaN on other offers' rows)


def fit_uplift(data: CampaignData | None, scorer: ChurnScorer, catalogue: Catalogue,
               pooled: bool = True) -> UpliftFit:
    """Per offer the learnt model (or the prior when history is thin), checked on held-out
    campaigns. ``pooled``: one risk correction shared by all offers (``fit_pooled``); else one
    model per offer on its own rows (``fit_offer``)."""
    if data is None:
        return UpliftFit(UpliftModels.priors_only(catalogue, "no campaign history with known "
                                                  "outcomes"), {}, {})
    settings = catalogue.uplift
    frame = data.frame
    treated = frame["treated"].astype(bool).to_numpy().astype(float)
    y = frame["outcome"].to_numpy(float)
    campaign = frame["campaign"].to_numpy()
    index = {o.id: j for j, o in enumerate(catalogue.offers)}
    offer_idx = frame["offer_id"].map(index).fillna(-1).to_numpy(int)  # -1: not in the catalogue
    p = scorer.predict(data.x)
    offset = logit(p, LOGIT_EPS)
    finite = np.where(np.isfinite(data.x), data.x, np.nan)
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # all-missing columns
        center = np.nan_to_num(np.nanmean(finite, axis=0), nan=0.0)
        spread = np.nanstd(finite, axis=0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    s = standardise(data.x, center, spread)
    families = [scorer.spec(f).family for f in scorer.features]
    models, metrics, held_out = {}, {}, {}
    learn: dict[int, np.ndarray] = {}
    for j, offer in enumerate(catalogue.offers):
        mine = offer_idx == j
        n_t, n_c = int((mine & (treated == 1)).sum()), int((mine & (treated == 0)).sum())
        if min(n_t, n_c) < catalogue.min_campaign_size:
            note = (f"prior: only {n_t} treated and {n_c} hold-out customers in past campaigns "
                    f"(needs {catalogue.min_campaign_size} of each)")
            log.info("uplift %s: %s", offer.id, note)
            models[offer.id] = OfferEffectModel(offer.id, PRIOR, note)
        else:
            learn[j] = effect_columns(offer, families, settings)

    def fit_on(rows: np.ndarray) -> dict[int, tuple[float, np.ndarray, float, np.ndarray]]:
        """(c, main, a, inter) per learnt offer with at least two treated and two hold-out
        customers among ``rows``."""
        ok = {j: v for j, v in learn.items()
              if min((rows & (offer_idx == j) & (treated == 1)).sum(),
                     (rows & (offer_idx == j) & (treated == 0)).sum()) >= 2}
        if pooled:
            if not ok:
                return {}
            f = fit_pooled(s[rows], offer_idx[rows], treated[rows], y[rows], offset[rows],
                           settings, ok)
            return {j: (f.c, f.main, *f.effects[j]) for j in ok}
        return {j: fit_offer(s[m], treated[m], y[m], offset[m], settings, cols)
                for j, cols in ok.items() for m in [rows & (offer_idx == j)]}

    full = fit_on(np.ones(len(y), dtype=bool))
    # each campaign predicted by the models fitted on the others
    effect = {j: np.full(len(y), np.nan) for j in learn}
    for k in np.unique(campaign[np.isin(offer_idx, list(learn))]):
        for j, (ck, mk, ak, ik) in fit_on(campaign != k).items():
            test = (campaign == k) & (offer_idx == j)
            fold = OfferEffectModel("", LEARNT, "", ck, ak, mk.tolist(), ik.tolist(),
                                    center.tolist(), spread.tolist())
            effect[j][test] = fold.effect(p[test], data.x[test], 0.0, s[test])
    for j, offer in enumerate(catalogue.offers):
        if j not in learn:
            continue
        mine = offer_idx == j
        n_t, n_c = int((mine & (treated == 1)).sum()), int((mine & (treated == 0)).sum())
        c, main, a, inter = full[j]
        model = OfferEffectModel(
            offer.id, LEARNT, f"learnt from {n_t} treated and {n_c} hold-out customers in "
            f"{len(np.unique(campaign[mine]))} campaigns (outcome: {data.outcome}"
            f"{'; risk correction pooled across offers' if pooled else ''})",
            c, a, main.tolist(), inter.tolist(), center.tolist(), spread.tolist())
        checked = mine & ~np.isnan(effect[j])
        observed, se, used = _pooled_cut(y[checked], treated[checked], campaign[checked])
        if used == 0:
            model.note += "; no campaign to check it on (not shrunk)"
        else:
            predicted = -effect[j][checked & (treated == 1)].mean()
            shown = observed - catalogue.evidence_z * se  # the cut the campaigns vouch for
            model.scale = float(np.clip(shown / predicted, 0.0, 1.0)) if predicted > 0 else 0.0
            if model.scale == 0.0:
                model.note += (f"; not used: held-out campaigns do not show it works "
                               f"(observed cut {observed:+.3f} +/- {se:.3f})")
            else:
                model.note += (f"; held-out campaigns show a cut of {observed:+.3f} +/- {se:.3f} "
                               f"vs {predicted:+.3f} predicted: effects scaled by "
                               f"{model.scale:.2f}")
            _, coef = qini(effect[j][checked], treated[checked] == 1, 1 - y[checked])
            model.metrics = {"qini": coef,
                             "predicted_mean_effect": float(np.mean(effect[j][checked])),
                             "observed_churn_cut": float(observed), "observed_cut_se": se,
                             "scale": model.scale, "checked_campaigns": used,
                             "checked_rows": int(checked.sum())}
            metrics.update({f"uplift.{offer.id}.{k}": float(v) for k, v in model.metrics.items()})
            held_out[offer.id] = np.where(checked, effect[j], np.nan)
        log.info("uplift %s: %s (c %.3f a %.3f) %s", offer.id, model.note, c, a, model.metrics)
        models[offer.id] = model
    return UpliftFit(UpliftModels({o.id: models[o.id] for o in catalogue.offers}), metrics,
                     held_out)

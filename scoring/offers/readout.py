"""Reading a sent campaign: what each offer really did, against what the model predicted.

Input: one row per customer the campaign selected (hold-outs included) with its outcome, the
offers table's columns (``customer_id, offer_id, treated``) plus ``outcome`` (1 = the customer
churned / was gone after the campaign) and, when the plan wrote them, ``arm``,
``predicted_churn_cut``, ``customer_value`` and ``cost``.

Per offer: the realised churn cut (hold-out churn rate minus treated churn rate, within each arm,
pooled by the arms' sizes, so a 50/50 test slice and a 10% policy hold-out are not mixed) with a
normal confidence interval; the cut the model predicted for the treated customers; the net value
realised (realised cut x the treated customers' mean value - cost, per offer sent, and in total);
the calibration of the predicted cut by decile of it; and a verdict:

- ``proven``: the interval is above zero (the offer cuts churn);
- ``disproven``: the interval is below the smallest cut worth having (``min_effect``), so the
  offer does not cut churn by as much as is worth sending it for (a harmful offer included);
- ``unknown``: neither: the campaign was too small to tell.

``evidence_table`` is what the next training reads (``training.readouts``).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from scoring.offers.catalogue import Catalogue
from scoring.offers.design import DISPROVEN, POLICY, PROVEN, UNKNOWN, CampaignError

REQUIRED = ("customer_id", "offer_id", "treated", "outcome")
EVIDENCE_COLUMNS = ("offer_id", "campaign_id", "sent_ts", "realised_cut", "cut_se", "ci_low",
                    "ci_high", "treated", "hold_out", "predicted_cut", "verdict")


def check_outcomes(frame: pd.DataFrame, catalogue: Catalogue, source: str = "outcomes") -> None:
    """Refuse what cannot be read: a missing column (above all the hold-out flag ``treated``),
    outcomes that are not 0/1, offers unknown to the catalogue, an offer without a hold-out."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        hint = (" (the hold-out flag: true = sent, false = randomised hold-out; without it no "
                "effect can be read)" if "treated" in missing else "")
        raise CampaignError(f"{source} has no column {', '.join(missing)}{hint}; it has "
                            f"{list(frame.columns)[:8]}")
    if frame.empty:
        raise CampaignError(f"{source} has no rows")
    treated = frame["treated"]
    bad = treated[~treated.isin([True, False, 0, 1])]
    if len(bad):
        raise CampaignError(f"{source}.treated must be true/false; e.g. {bad.head(3).tolist()}")
    y = pd.to_numeric(frame["outcome"], errors="coerce")
    bad = frame.loc[~y.isin([0.0, 1.0]), "outcome"]
    if len(bad):
        raise CampaignError(f"{source}.outcome must be 0 or 1 (1 = churned); e.g. "
                            f"{bad.head(3).tolist()} ({len(bad)} rows)")
    unknown = sorted(set(frame["offer_id"].astype(str)) - set(catalogue.ids))
    if unknown:
        raise CampaignError(f"{source}.offer_id has offers unknown to the catalogue: "
                            f"{unknown[:5]} (the catalogue has {catalogue.ids})")
    arms = frame.assign(_t=frame["treated"].astype(bool)).groupby("offer_id")["_t"]
    no_hold = [(o, int(n)) for o, n in arms.sum().items() if n == arms.size()[o]]
    if no_hold:
        raise CampaignError(f"{source}: the campaign has no hold-out for "
                            + ", ".join(f"{o} ({n} treated, 0 held out)" for o, n in no_hold)
                            + "; its effect cannot be read (plan campaigns with "
                              "`churn offers plan`, which keeps one)")


def _variance(y: np.ndarray) -> float:
    """Bernoulli variance of a rate, shrunk half a count towards 1/2 so that a rate of 0 or 1 in
    a small arm still has some uncertainty."""
    p = (y.sum() + 0.5) / (len(y) + 1)
    return float(p * (1 - p))


def _arm_cut(y: np.ndarray, treated: np.ndarray, strata: np.ndarray) -> tuple[float, float, int,
                                                                              int]:
    """Hold-out minus treated rate within each stratum, pooled by stratum size; its standard
    error; treated and hold-out customers used (strata with both arms only)."""
    num = den = var = 0.0
    n_t = n_c = 0
    for s in pd.unique(strata):
        rows = strata == s
        yc, yt = y[rows & ~treated], y[rows & treated]
        if len(yc) == 0 or len(yt) == 0:
            continue
        n = len(yc) + len(yt)
        vc, vt = _variance(yc), _variance(yt)
        num += n * (yc.mean() - yt.mean())
        var += n * n * (vc / len(yc) + vt / len(yt))
        den += n
        n_t, n_c = n_t + len(yt), n_c + len(yc)
    if den == 0:
        return float("nan"), float("inf"), n_t, n_c
    return num / den, float(np.sqrt(var) / den), n_t, n_c


def verdict(low: float, high: float, min_effect: float) -> str:
    if low > 0:
        return PROVEN
    if high < min_effect:
        return DISPROVEN
    return UNKNOWN


def read_campaign(frame: pd.DataFrame, catalogue: Catalogue, min_effect: float = 0.03,
                  alpha: float = 0.05, source: str = "outcomes") -> pd.DataFrame:
    """One row per offer: sizes, realised cut and its interval, predicted cut, net value, verdict."""
    check_outcomes(frame, catalogue, source)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    frame = frame.assign(treated=frame["treated"].astype(bool),
                         outcome=pd.to_numeric(frame["outcome"]).astype(float))
    rows = []
    for oid, g in frame.groupby("offer_id", sort=False):
        t = g["treated"].to_numpy()
        y = g["outcome"].to_numpy()
        strata = (g["arm"].astype(str).to_numpy() if "arm" in g.columns
                  else np.full(len(g), POLICY))
        cut, se, n_t, n_c = _arm_cut(y, t, strata)
        low, high = cut - z * se, cut + z * se
        predicted = (float(g.loc[g["treated"], "predicted_churn_cut"].mean())
                     if "predicted_churn_cut" in g.columns else float("nan"))
        cost = catalogue.offer(str(oid)).cost
        value = (float(g.loc[g["treated"], "customer_value"].mean())
                 if "customer_value" in g.columns else float("nan"))
        rows.append({"offer_id": str(oid), "treated": int(t.sum()), "hold_out": int((~t).sum()),
                     "churn_treated": float(y[t].mean()) if t.any() else float("nan"),
                     "churn_hold_out": float(y[~t].mean()),
                     "realised_cut": cut, "cut_se": se, "ci_low": low, "ci_high": high,
                     "predicted_cut": predicted, "realised_net_per_offer": cut * value - cost,
                     "expected_net_per_offer": predicted * value - cost,
                     "realised_net_value": (cut * value - cost) * int(t.sum()),
                     "verdict": verdict(low, high, min_effect)})
    return pd.DataFrame(rows)


def uplift_calibration(frame: pd.DataFrame, bins: int = 10, min_hold_out: int = 20
                       ) -> pd.DataFrame:
    """Predicted vs realised cut by decile of the predicted cut (all offers pooled; fewer bins
    when the hold-out is small: each bin keeps about ``min_hold_out`` held-out customers)."""
    if "predicted_churn_cut" not in frame.columns:
        raise CampaignError("the outcomes have no predicted_churn_cut column: the uplift "
                            "calibration needs the cut the plan predicted per customer")
    t = frame["treated"].astype(bool).to_numpy()
    y = pd.to_numeric(frame["outcome"]).to_numpy(float)
    pred = frame["predicted_churn_cut"].to_numpy(float)
    strata = frame["arm"].astype(str).to_numpy() if "arm" in frame.columns else \
        np.full(len(frame), POLICY)
    strata = np.char.add(strata.astype(str), frame["offer_id"].astype(str).to_numpy().astype(str))
    k = int(max(1, min(bins, (~t).sum() // max(min_hold_out, 1))))
    order = np.argsort(pred, kind="stable")
    out = []
    for b, idx in enumerate(np.array_split(order, k)):
        cut, se, n_t, n_c = _arm_cut(y[idx], t[idx], strata[idx])
        out.append({"bin": b + 1, "customers": len(idx), "treated": n_t, "hold_out": n_c,
                    "predicted_cut": float(pred[idx][t[idx]].mean()) if t[idx].any()
                    else float(pred[idx].mean()),
                    "realised_cut": cut, "cut_se": se})
    return pd.DataFrame(out)


def evidence_table(readout: pd.DataFrame, campaign_id: str = "",
                   sent_ts: pd.Timestamp | None = None) -> pd.DataFrame:
    """The readout as the next training reads it: per offer and campaign, the realised cut, its
    interval and the verdict (see ``training.readouts``)."""
    out = readout.assign(campaign_id=campaign_id,
                         sent_ts=pd.Timestamp(sent_ts) if sent_ts is not None else pd.NaT)
    return out.loc[:, list(EVIDENCE_COLUMNS)].reset_index(drop=True)

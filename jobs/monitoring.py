"""Monitoring: is the model still looking at the customers it was trained on, and still right?

- Drift: per-feature population stability index (PSI) and missing-rate change between the
  reference (the hold-out logged with the model) and a new feature set; the score distribution's
  PSI and the share of customers in each risk band.
- Back-test: once the labels of an earlier scoring have matured, its ROC AUC, calibration error
  and top-decile lift, next to the hold-out figures logged at training.
- Campaign readout: a sent campaign's realised effect per offer, from its hold-out.

Pure functions of frames; ``jobs.monitor_report`` draws the report, the CLI wires them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from scoring.bands import RiskBands
from scoring.evaluation import expected_calibration_error, lift_and_capture

EPS = 1e-4


class MonitorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_warn: float = Field(0.10, ge=0, description="PSI from which a feature is flagged")
    psi_alert: float = Field(0.25, ge=0, description="PSI from which a feature alerts")
    missing_alert: float = Field(0.10, ge=0, description="missing-rate change that alerts")
    score_psi_alert: float = Field(0.20, ge=0)
    auc_drop_alert: float = Field(0.05, ge=0, description="back-test AUC this far below hold-out")
    bins: int = Field(10, ge=2)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of a numeric feature, on the reference's quantile bins.

    Missing values are a bin of their own, so a change in missingness shows too.
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref_ok) == 0:
        edges = np.array([])
    else:
        edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: np.ndarray, ok: np.ndarray, n: int) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
        return np.append(counts, n - len(ok)) / max(n, 1)

    return _psi_from_shares(shares(ref, ref_ok, len(ref)), shares(cur, cur_ok, len(cur)))


MISSING, OTHER = "<missing>", "<other>"


def category_shares(reference: pd.Series, current: pd.Series, top: int | None = None
                    ) -> pd.DataFrame:
    """Each category's share of the reference and of the new data, side by side (columns
    ``reference`` and ``new``, one row per category; missing values are the category
    ``<missing>``). With ``top``, the ``top - 1`` categories with the largest share on either side
    are kept, in that order, and the rest summed as ``<other>``."""
    ref = reference.astype("str").fillna(MISSING)
    cur = current.astype("str").fillna(MISSING)
    cats = sorted(set(ref.unique()) | set(cur.unique()))
    table = pd.DataFrame({"reference": ref.value_counts(normalize=True).reindex(cats, fill_value=0),
                          "new": cur.value_counts(normalize=True).reindex(cats, fill_value=0)},
                         index=pd.Index(cats, name="category")).astype(float)
    if top is None:
        return table
    order = table.max(axis=1).sort_values(ascending=False, kind="stable").index
    if len(order) <= top:
        return table.loc[order]
    keep = order[:top - 1]
    rest = table.drop(index=keep).sum().to_frame(OTHER).T
    return pd.concat([table.loc[keep], rest]).rename_axis("category")


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    shares = category_shares(reference, current)
    return _psi_from_shares(shares["reference"].to_numpy(), shares["new"].to_numpy())


def _psi_from_shares(r: np.ndarray, c: np.ndarray) -> float:
    r, c = np.clip(r, EPS, None), np.clip(c, EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass
class DriftReport:
    features: pd.DataFrame  # feature, kind, psi, missing_ref, missing_cur, missing_change, status
    score_psi: float
    bands_ref: dict[str, float]
    bands_cur: dict[str, float]
    alerts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def drift(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], kinds: list[str],
          ref_scores: np.ndarray, cur_scores: np.ndarray, bands: RiskBands, config: MonitorConfig
          ) -> DriftReport:
    rows = []
    for name, kind in zip(features, kinds, strict=True):
        if name not in current.columns:
            rows.append((name, kind, np.nan, np.nan, np.nan, np.nan, "missing column"))
            continue
        ref, cur = reference[name], current[name]
        value = psi_categorical(ref, cur) if kind == "category" else \
            psi(pd.to_numeric(ref, errors="coerce").to_numpy(float),
                pd.to_numeric(cur, errors="coerce").to_numpy(float), config.bins)
        m_ref, m_cur = float(ref.isna().mean()), float(cur.isna().mean())
        change = abs(m_cur - m_ref)
        status = ("alert" if value >= config.psi_alert or change >= config.missing_alert
                  else "warn" if value >= config.psi_warn else "ok")
        rows.append((name, kind, value, m_ref, m_cur, change, status))
    table = pd.DataFrame(rows, columns=["feature", "kind", "psi", "missing_ref", "missing_cur",
                                        "missing_change", "status"]) \
        .sort_values("psi", ascending=False, na_position="first").reset_index(drop=True)
    score_psi = psi(ref_scores, cur_scores, config.bins)
    report = DriftReport(table, score_psi, bands.shares(ref_scores), bands.shares(cur_scores))
    for _, r in table.iterrows():
        if r["status"] == "missing column":
            report.alerts.append(f"feature {r['feature']} is missing from the new data")
        elif r["status"] == "alert":
            report.alerts.append(f"feature {r['feature']}: PSI {r['psi']:.3f}, missing rate "
                                 f"{r['missing_ref']:.1%} -> {r['missing_cur']:.1%}")
        elif r["status"] == "warn":
            report.warnings.append(f"feature {r['feature']}: PSI {r['psi']:.3f}")
    if score_psi >= config.score_psi_alert:
        report.alerts.append(f"score distribution: PSI {score_psi:.3f}")
    return report


def backtest(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, calibration error and top-decile lift of an earlier scoring, labels matured."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    lift, capture = lift_and_capture(y, p, 0.10)
    return {"roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
            "calibration_error": expected_calibration_error(y, p), "lift_top10": lift,
            "capture_top10": capture, "churn_rate": float(y.mean()),
            "mean_prediction": float(p.mean()), "rows": float(len(y))}


def offer_backtest(scored: pd.DataFrame, offers: pd.DataFrame, cutoff: pd.Timestamp,
                   costs: dict[str, float], window_days: int = 30) -> pd.DataFrame:
    """Realised vs. expected value of the offers a scoring recommended.

    Uses the randomised campaigns run after the scoring: among customers the scoring recommended
    an offer to, and who were then selected for that same offer in a campaign within
    ``window_days``, the realised churn cut is the hold-out's churn rate minus the treated
    customers' (labels matured); the expected cut and value are the scoring's. ``scored`` needs
    ``customer_id, offer_id, offer_expected_net_value, offer_churn_reduction, label``.
    """
    rec = scored[scored["offer_id"].fillna("") != ""]
    start, end = pd.Timestamp(cutoff), pd.Timestamp(cutoff) + pd.Timedelta(days=window_days)
    campaign = offers[(offers["sent_ts"] >= start) & (offers["sent_ts"] < end)]
    joined = rec.merge(campaign[["customer_id", "offer_id", "treated"]].astype(
        {"customer_id": str}), on=["customer_id", "offer_id"], how="inner")
    rows = []
    for offer_id, g in joined.groupby("offer_id"):
        treated = g["treated"].astype(bool).to_numpy()
        y = g["label"].to_numpy(float)
        cost = costs.get(offer_id, 0.0)
        cut = g["offer_churn_reduction"].to_numpy(float)
        value = np.where(cut > 0, (g["offer_expected_net_value"].to_numpy(float) + cost)
                         / np.where(cut > 0, cut, 1), 0.0)
        realised_cut = (y[~treated].mean() - y[treated].mean()
                        if treated.any() and (~treated).any() else np.nan)
        rows.append({"offer_id": offer_id, "treated": int(treated.sum()),
                     "hold_out": int((~treated).sum()),
                     "expected_churn_cut": float(cut[treated].mean()) if treated.any() else np.nan,
                     "realised_churn_cut": float(realised_cut),
                     "expected_net_per_offer": float(g.loc[treated, "offer_expected_net_value"]
                                                     .mean()) if treated.any() else np.nan,
                     "realised_net_per_offer": float(realised_cut * value[treated].mean() - cost)
                     if treated.any() and np.isfinite(realised_cut) else np.nan})
    return pd.DataFrame(rows, columns=["offer_id", "treated", "hold_out", "expected_churn_cut",
                                       "realised_churn_cut", "expected_net_per_offer",
                                       "realised_net_per_offer"])


def campaign_readout(frame: pd.DataFrame, catalogue, min_effect: float = 0.03,
                     alpha: float = 0.05, source: str = "outcomes"
                     ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A sent campaign's readout for the report: per offer the realised churn cut from its
    hold-out against the predicted one, net value and verdict (``scoring.offers.readout``), and
    the uplift calibration by decile when the plan's predicted cuts are there."""
    from scoring.offers.readout import read_campaign, uplift_calibration

    table = read_campaign(frame, catalogue, min_effect, alpha, source)
    calibration = (uplift_calibration(frame.assign(treated=frame["treated"].astype(bool)))
                   if "predicted_churn_cut" in frame.columns else None)
    return table, calibration

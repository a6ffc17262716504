"""What the next training takes from campaign readouts (``churn offers readout --out``).

A readout's evidence table (``scoring.offers.readout.evidence_table``) says, per offer and
campaign, the realised churn cut, its interval and the verdict. The latest verdict per offer
bounds the learnt effect model:

- ``disproven``: the offer is not trusted (its effect is scaled to zero), whatever the campaigns
  the model learnt from suggested; the plan then neither sends it nor tests it;
- ``proven``: kept as learnt; recorded in its note and metrics;
- ``unknown``: kept; the next plan gives it a test slice when its effect is not learnt.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from features.io import read_frame
from scoring.offers.design import DISPROVEN, PROVEN, UNKNOWN, CampaignError
from scoring.offers.readout import EVIDENCE_COLUMNS
from scoring.offers.uplift import LEARNT, UpliftModels

log = logging.getLogger(__name__)


def read_evidence(paths: list[str | Path]) -> pd.DataFrame:
    """The evidence tables of one or more readouts, stacked and checked."""
    frames = []
    for path in paths:
        frame = read_frame(Path(path))
        missing = [c for c in ("offer_id", "verdict", "realised_cut", "ci_low", "ci_high")
                   if c not in frame.columns]
        if missing:
            raise CampaignError(f"{path} is not a readout's evidence table: no column "
                                f"{', '.join(missing)} (write one with `churn offers readout "
                                f"--out`; columns {list(EVIDENCE_COLUMNS)})")
        bad = frame.loc[~frame["verdict"].isin([PROVEN, DISPROVEN, UNKNOWN]), "verdict"]
        if len(bad):
            raise CampaignError(f"{path}: verdict must be proven, disproven or unknown; e.g. "
                                f"{bad.head(3).tolist()}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=list(EVIDENCE_COLUMNS))


def latest_verdicts(evidence: pd.DataFrame) -> dict[str, str]:
    """The latest verdict per offer (by ``sent_ts`` when known, else the table's order)."""
    if evidence.empty:
        return {}
    ordered = evidence
    if "sent_ts" in evidence.columns and evidence["sent_ts"].notna().any():
        ordered = evidence.assign(_t=pd.to_datetime(evidence["sent_ts"])).sort_values(
            "_t", kind="stable", na_position="first")
    return ordered.groupby("offer_id", sort=False)["verdict"].last().to_dict()


def apply_readouts(models: UpliftModels, evidence: pd.DataFrame) -> UpliftModels:
    """The models bounded by the readouts' latest verdicts (in place, and returned)."""
    for offer_id, verdict in latest_verdicts(evidence).items():
        model = models.models.get(offer_id)
        if model is None:
            log.warning("readout of %s: no such offer in the trained models", offer_id)
            continue
        row = evidence[evidence["offer_id"] == offer_id].iloc[-1]
        said = (f"readout: {verdict} (cut {row['realised_cut']:+.3f}, interval "
                f"{row['ci_low']:+.3f} to {row['ci_high']:+.3f})")
        if verdict == DISPROVEN:
            if model.source != LEARNT:  # a prior no readout supports is no longer assumed
                model.source = LEARNT
                model.center, model.spread, model.main, model.inter = [], [], [], []
            model.scale = 0.0
            said += ": not used"
        model.note = f"{model.note}; {said}" if model.note else said
        model.metrics = {**model.metrics, "readout_cut": float(row["realised_cut"]),
                         "readout_proven": float(verdict == PROVEN),
                         "readout_disproven": float(verdict == DISPROVEN)}
        log.info("uplift %s: %s", offer_id, said)
    return models

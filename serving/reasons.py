"""Per-customer reasons: the features that moved a customer's score most, as sentences.

Built from LightGBM's feature contributions (SHAP values in log-odds) and the feature metadata,
e.g. "3 complaints in the last 90 days" or "no order for 120 days; usually orders every 30 days".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from serving.scorer import ChurnScorer

# a feature whose sentence reads better with a companion's value beside it
COMPANIONS = {"recency_days": "interpurchase_days", "overdue_ratio": "interpurchase_days"}


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float | str | None
    contribution: float  # log-odds; > 0 raises the risk
    direction: str  # "raises" | "lowers"
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


def top_reasons(scorer: ChurnScorer, x: np.ndarray, contributions: np.ndarray, k: int = 3,
                risk_only: bool = True) -> list[Reason]:
    """The ``k`` features with the largest contributions for one customer (row ``x``).

    With ``risk_only`` only features that raise the risk are given (what a retention agent acts
    on); otherwise the largest in absolute size, either way.
    """
    contrib = contributions[: len(scorer.features)]
    order = np.argsort(-contrib if risk_only else -np.abs(contrib), kind="stable")
    out: list[Reason] = []
    for j in order:
        c = float(contrib[j])
        if len(out) >= k or (risk_only and c <= 0):
            break
        name = scorer.features[j]
        value = scorer.decode(name, x[j])
        text = scorer.spec(name).say(value)
        partner = COMPANIONS.get(name)
        if partner in scorer._position and value is not None:
            pv = scorer.decode(partner, x[scorer._position[partner]])
            if pv is not None:
                text = f"{text}; {scorer.spec(partner).say(pv)}"
        out.append(Reason(name, value, round(c, 4), "raises" if c > 0 else "lowers", text))
    return out


def reasons_for_rows(scorer: ChurnScorer, x: np.ndarray, k: int = 3) -> list[list[Reason]]:
    """Reasons for many customers (the batch path): one contribution call for the whole block."""
    contrib = scorer.contributions(x)
    return [top_reasons(scorer, x[i], contrib[i], k) for i in range(len(x))]

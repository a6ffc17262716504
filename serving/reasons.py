"""Per-customer reasons: the features that moved a customer's score most, as sentences.

Built from the model's feature contributions in log-odds (decision-path attribution by default,
exact TreeSHAP if the model says so: see ``serving/paths.py``) and the feature metadata, e.g.
"3 complaints in the last 90 days" or "no order for 120 days; usually orders every 30 days".
"""

from __future__ import annotations

import json
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


def reason_texts(scorer: ChurnScorer, x: np.ndarray, contributions: np.ndarray, k: int = 3,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """The batch form of :func:`top_reasons`: for every row the JSON list of its reason sentences
    (risk-raising features only), as an object array of strings; ``"[]"`` where ``rows`` is False.

    Equal to ``json.dumps([r.text for r in top_reasons(...)])`` row by row, but each distinct
    (feature, value, companion value) sentence is written once per block and the rows are joined
    with array operations: per-row Python work was most of the batch job's time.
    """
    n, width = len(x), len(scorer.features)
    out = np.full(n, "[]", dtype=object)
    if k <= 0 or n == 0:
        return out
    contrib = contributions[:, :width]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(contrib, order, axis=1) > 0  # a prefix of each row: sorted
    if rows is not None:
        valid &= np.asarray(rows, dtype=bool)[:, None]
    r, s = np.nonzero(valid)
    if len(r) == 0:
        return out
    j = order[r, s]
    partner = np.array([scorer._position.get(COMPANIONS.get(f, ""), -1) for f in scorer.features])
    pj = partner[j]
    v = x[r, j].astype(np.float64)
    pv = np.where(pj >= 0, x[r, np.maximum(pj, 0)], np.nan)
    v[np.isnan(v)] = np.nan  # one bit pattern per missing value, so equal keys compare equal
    pv[np.isnan(pv)] = np.nan
    keys = np.stack([j.astype(np.int64), v.view(np.int64), pv.view(np.int64)], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    encoded = np.empty(len(first), dtype=object)
    for u, i in enumerate(first):
        name = scorer.features[j[i]]
        value = scorer.decode(name, v[i])
        text = scorer.spec(name).say(value)
        if pj[i] >= 0 and value is not None:
            pvalue = scorer.decode(scorer.features[pj[i]], pv[i])
            if pvalue is not None:
                text = f"{text}; {scorer.spec(scorer.features[pj[i]]).say(pvalue)}"
        encoded[u] = json.dumps(text)
    parts = np.full(valid.shape, "", dtype=object)
    parts[r, s] = encoded[inverse.ravel()]
    joined = np.full(n, "[", dtype=object)
    for col in range(valid.shape[1]):
        has = valid[:, col]
        joined[has] = joined[has] + ("" if col == 0 else ", ") + parts[has, col]
    return joined + "]"

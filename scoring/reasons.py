"""Per-customer reasons: the features that moved a customer's score most, as sentences.

Built from the model's feature contributions in log-odds (decision-path attribution by default,
exact TreeSHAP if the model says so: see ``scoring/paths.py``) and the feature metadata, e.g.
"3 complaints in the last 90 days" or "no order for 120 days; usually orders every 30 days".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from features.spec import CATEGORY
from scoring.paths import top_positive
from scoring.scorer import ChurnScorer

# a feature whose sentence reads better with a companion's value beside it
COMPANIONS = {"recency_days": "interpurchase_days", "overdue_ratio": "interpurchase_days"}


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float | str | None
    contribution: float  # log-odds; > 0 raises the risk
    direction: str  # "raises" | "lowers"
    text: str

    def as_dict(self) -> dict:  # flat fields: no deep copy (asdict's) on the request path
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution,
                "direction": self.direction, "text": self.text}


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


_DIGITS = np.array([str(k) for k in range(100_000)], dtype=object)


def _escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


def _phrases(scorer: ChurnScorer, name: str, values: np.ndarray) -> np.ndarray:
    """JSON-escaped ``spec.say(decode(value))`` for many values of one feature, formatted with
    array operations for plain numeric sentences (the same format rules as ``FeatureSpec.say``)."""
    spec = scorer.spec(name)
    out = np.empty(len(values), dtype=object)
    missing = np.isnan(values)
    out[missing] = _escaped(spec.say(None))
    known = ~missing
    head, sep, tail = spec.sentence.partition("{value}")
    simple = (sep and "{" not in head + tail and "}" not in head + tail
              and spec.kind != "category" and spec.unit != "flag"
              and scorer.kinds[scorer._position[name]] != CATEGORY)
    if not simple:
        uniq, inverse = np.unique(values[known], return_inverse=True)
        table = np.array([_escaped(spec.say(scorer.decode(name, u))) for u in uniq] + [""],
                         dtype=object)
        out[known] = table[inverse.ravel()]
        return out
    v = values[known]
    whole = (np.abs(v - np.round(v)) < 1e-9) | (np.abs(v) >= 100)
    small = ~whole & (np.abs(v) < 1)
    text = np.empty(len(v), dtype=object)
    # whole numbers (counts, days; anything >= 100) are most values: small non-negative ones come
    # from a table of digits ("%.0f" rounds half to even on the binary value, like np.rint)
    rounded = np.rint(v)
    tabled = whole & ~np.signbit(v) & (rounded < len(_DIGITS))
    text[tabled] = _DIGITS[rounded[tabled].astype(np.int64)]
    for mask, fmt in ((whole & ~tabled, "%.0f"), (small, "%.2f"), (~whole & ~small, "%.1f")):
        if mask.any():
            text[mask] = np.char.mod(fmt, v[mask]).astype(object)
    out[known] = _escaped(head) + text + _escaped(tail)
    return out


def reason_texts(scorer: ChurnScorer, x: np.ndarray, contributions: np.ndarray | None,
                 k: int = 3, rows: np.ndarray | None = None,
                 order: np.ndarray | None = None) -> np.ndarray:
    """The batch form of :func:`top_reasons`: for every row the JSON list of its reason sentences
    (risk-raising features only), as an object array of strings; ``"[]"`` where ``rows`` is False.

    Equal to ``json.dumps([r.text for r in top_reasons(...)])`` row by row (tested), but built
    feature by feature with array operations: per-row Python work was most of the batch job's
    time. ``order``: each row's top columns already picked (``ChurnScorer.predict_top``), in
    place of ``contributions``.
    """
    n, width = len(x), len(scorer.features)
    if k <= 0 or n == 0:
        return np.full(n, "[]", dtype=object)
    if order is None:
        order = top_positive(contributions[:, :width], k)
    order = order[:, :k]
    valid = order >= 0  # a prefix of each row
    if rows is not None:
        valid &= np.asarray(rows, dtype=bool)[:, None]
    r, s = np.nonzero(valid)
    j = order[r, s]
    parts = np.full(valid.shape, "", dtype=object)
    by_feature = np.argsort(j, kind="stable")
    features, starts = np.unique(j[by_feature], return_index=True)
    for f, lo, hi in zip(features, starts, list(starts[1:]) + [len(j)], strict=True):
        idx = by_feature[lo:hi]
        rows_f = r[idx]
        name = scorer.features[f]
        values = x[rows_f, f].astype(np.float64)
        texts = _phrases(scorer, name, values)
        partner = scorer._position.get(COMPANIONS.get(name, ""))
        if partner is not None:
            pvalues = x[rows_f, partner].astype(np.float64)
            both = ~np.isnan(values) & ~np.isnan(pvalues)
            if both.any():
                texts[both] = (texts[both] + "; "
                               + _phrases(scorer, scorer.features[partner], pvalues[both]))
        parts[rows_f, s[idx]] = texts
    joined = np.full(n, '["', dtype=object)
    for col in range(valid.shape[1]):
        has = valid[:, col]
        joined[has] = joined[has] + ("" if col == 0 else '", "') + parts[has, col]
    joined[valid[:, 0]] = joined[valid[:, 0]] + '"]'
    joined[~valid[:, 0]] = "[]"
    return joined

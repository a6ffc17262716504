"""One customer's features as the model's vector, with what is wrong with them: the online path.

``RowReader.read`` gives what ``ChurnScorer.row`` followed by ``Limits.item_problems`` gives (the
same vector, the same problems in the same order), but for the usual customer (every numeric value
a plain number or null) it takes a few array operations instead of a Python step per feature: the
per-feature steps were a third of the service's own CPU time per request. Anything else (a boolean,
a text, a number that is not finite, a number subclass) takes the per-feature path, unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.spec import CATEGORY
from scoring.scorer import ChurnScorer

_PLAIN = frozenset({float, int, type(None)})  # the types the array path reads as they are


class RowReader:
    """Built once per model: the names it reads, in its column order, and its category codes."""

    def __init__(self, scorer: ChurnScorer) -> None:
        self.scorer = scorer
        self.limits = scorer.limits
        self._width = len(scorer.features)
        self._numbers = [n for n, k in zip(scorer.features, scorer.kinds, strict=True)
                         if k != CATEGORY]
        self._number_at = np.array([j for j, k in enumerate(scorer.kinds) if k != CATEGORY],
                                   dtype=np.intp)
        self._categories = [(j, n, scorer._codes[n]) for j, (n, k) in
                            enumerate(zip(scorer.features, scorer.kinds, strict=True))
                            if k == CATEGORY]
        self._known = frozenset(scorer.features)

    def read(self, features: dict[str, Any], ignore_unknown: bool = False
             ) -> tuple[np.ndarray, list[str]]:
        """The vector and the item's problems: unknown names (unless ``ignore_unknown``), values
        that are not numbers, booleans for counts or amounts, values outside the model's limits,
        a customer with every feature empty."""
        values = list(map(features.get, self._numbers))
        if not _PLAIN.issuperset(map(type, values)):
            return self._per_feature(features, ignore_unknown)
        try:
            numbers = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:  # an integer past float's range: named by the per-feature path
            return self._per_feature(features, ignore_unknown)
        if np.count_nonzero(np.isfinite(numbers)) + values.count(None) != len(values):
            return self._per_feature(features, ignore_unknown)  # a NaN or an infinity was sent
        if self._categories:
            x = np.empty(self._width)
            x[self._number_at] = numbers
            for j, name, codes in self._categories:
                value = features.get(name)
                x[j] = np.nan if value is None else codes.get(str(value), np.nan)
        else:
            x = numbers
        if not ignore_unknown and not self._known.issuperset(features):
            return x, [f"unknown feature {k!r}" for k in features if k not in self._known]
        why = self.limits.row_reason(x)
        return x, [why] if why else []

    def _per_feature(self, features: dict[str, Any], ignore_unknown: bool
                     ) -> tuple[np.ndarray, list[str]]:
        x, problems = self.scorer.row(features, ignore_unknown=ignore_unknown)
        return x, problems or self.limits.item_problems(features, x)

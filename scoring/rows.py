"""One customer's features as the model's vector, with what is wrong with them: the online path.

``RowReader.read`` gives what ``ChurnScorer.row`` followed by ``Limits.item_problems`` gives (the
same vector, the same problems in the same order), but for the usual customer (every numeric value
a plain number or null) it takes a few array operations instead of a Python step per feature: the
per-feature steps were a third of the service's own CPU time per request. Anything else (a boolean,
a text, a number that is not finite, a number subclass) takes the per-feature path, unchanged.

``RowReader.read_stored`` reads a customer as the online store packs it (``features.store``'s
``PackedRow``) straight into the vector, with a plan worked out once per store layout: no dict of
178 features per lookup. It gives what ``read`` gives for the same customer's dict (tested), and
takes that path whenever the plan cannot: a model number stored as text, a model category stored
as a number, an infinite value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.packed_rows import PackedRow, RowLayout
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
        self._plans: dict[int, tuple[RowLayout, _Plan | None]] = {}

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

    def read_stored(self, row: PackedRow | dict[str, Any]) -> tuple[np.ndarray, list[str]]:
        """``read(features, ignore_unknown=True)`` for a customer from the online store (a
        ``PackedRow``, or the dict an older store gives)."""
        if isinstance(row, dict):
            return self.read(row, ignore_unknown=True)
        plan = self._plan(row.layout)
        if plan is None:
            return self.read(row.as_dict(), ignore_unknown=True)
        values = row.numbers[plan.source]
        if np.isinf(values).any():  # named by the per-feature path, as a dict's would be
            return self.read(row.as_dict(), ignore_unknown=True)
        x = np.full(self._width, np.nan)
        x[plan.target] = values
        if plan.categories:
            texts = row.texts
            for j, i, codes in plan.categories:
                value = texts[i]
                x[j] = np.nan if value is None else codes.get(str(value), np.nan)
        why = self.limits.row_reason(x)
        return x, [why] if why else []

    def _plan(self, layout: RowLayout) -> _Plan | None:
        known = self._plans.get(id(layout))
        if known is not None and known[0] is layout:
            return known[1]
        if len(self._plans) > 8:  # stores come and go with refreshes: keep the last few
            self._plans.clear()
        plan = _Plan.of(self, layout)
        self._plans[id(layout)] = (layout, plan)
        return plan


class _Plan:
    """Where a store layout's values go in the model's vector: the model's numbers that the store
    packs as numbers (``source`` in the row, ``target`` in the vector; the others are missing,
    as a feature absent from a dict is) and its categories that the store holds as text."""

    def __init__(self, source: np.ndarray, target: np.ndarray,
                 categories: list[tuple[int, int, dict[str, float]]]) -> None:
        self.source, self.target, self.categories = source, target, categories

    @classmethod
    def of(cls, reader: RowReader, layout: RowLayout) -> _Plan | None:
        """None when a model number is stored as text or a model category as a number: those
        need the per-feature checks of a dict."""
        number = {n: i for i, n in enumerate(layout.numbers)}
        text = {n: i for i, n in enumerate(layout.texts)}
        source, target = [], []
        for j, name in zip(reader._number_at.tolist(), reader._numbers, strict=True):
            if name in text:
                return None
            if name in number:
                source.append(number[name])
                target.append(j)
        categories = []
        for j, name, codes in reader._categories:
            if name in number:
                return None
            if name in text:
                categories.append((j, text[name], codes))
        return cls(np.array(source, dtype=np.intp), np.array(target, dtype=np.intp), categories)

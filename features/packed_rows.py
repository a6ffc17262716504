"""The online store's packed rows (store format 2): how a customer's features are laid out as
bytes, and one row read back.

A row is the float64 values of the store's numeric features (NaN = missing) followed by the JSON
list of its other features (text, categories, timestamps, integers too large for a float). A
lookup then reads the numbers with ``numpy.frombuffer`` instead of parsing a 5 kB JSON object;
``PackedRow.as_dict`` gives exactly what the JSON rows of format 1 gave (values, types, order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

_EXACT = 2.0 ** 53  # whole numbers up to this size survive a float64 exactly


@dataclass(frozen=True, eq=False)
class RowLayout:
    """How a store packs its rows: the float64 values of ``numbers`` (in that order; NaN = missing)
    then the JSON list of the other features (``texts``). ``integers``: the numbers that were a
    whole-number column (given back as ``int``, as the JSON format did)."""

    features: tuple[str, ...]
    numbers: tuple[str, ...]
    integers: frozenset[str]
    texts: tuple[str, ...] = field(init=False)
    size: int = field(init=False)  # bytes of a row's numbers
    order: tuple[tuple[str, bool, int], ...] = field(init=False, repr=False)

    def __post_init__(self):
        numbers = set(self.numbers)
        texts = tuple(n for n in self.features if n not in numbers)
        # where each feature's value is, in the features' order: (name, packed number?, index)
        at = {n: (True, i) for i, n in enumerate(self.numbers)}
        at.update({n: (False, i) for i, n in enumerate(texts)})
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "size", 8 * len(self.numbers))
        object.__setattr__(self, "order", tuple((n, *at[n]) for n in self.features))

    @classmethod
    def of(cls, frame: pd.DataFrame, feature_names: list[str]) -> RowLayout:
        """Numbers: the columns of a plain numpy number or boolean type (whole numbers only when
        every value is exact in a float64); every other column goes in the JSON list."""
        numbers, integers = [], set()
        for name in feature_names:
            dtype = frame[name].dtype
            if not isinstance(dtype, np.dtype) or dtype.kind not in "fiub":
                continue
            if dtype.kind in "iu":
                values = frame[name].to_numpy()
                if len(values) and max(abs(int(values.min())), abs(int(values.max()))) > _EXACT:
                    continue
                integers.add(name)
            numbers.append(name)
        return cls(tuple(feature_names), tuple(numbers), frozenset(integers))

    def meta(self) -> dict[str, str]:
        return {"numbers": json.dumps(list(self.numbers)),
                "integers": json.dumps(sorted(self.integers))}

    def pack(self, numbers: np.ndarray, texts: list) -> bytes:
        return numbers.tobytes() + json.dumps(texts).encode()


class PackedRow:
    """One customer's stored features, as packed: ``numbers`` (a float64 view of the row, in
    ``layout.numbers`` order) and ``texts`` (decoded when asked for)."""

    __slots__ = ("layout", "numbers", "_payload")

    def __init__(self, layout: RowLayout, payload: bytes):
        self.layout = layout
        self._payload = payload
        self.numbers = np.frombuffer(payload, np.float64, len(layout.numbers))

    @property
    def texts(self) -> list:
        return json.loads(self._payload[self.layout.size:])

    def as_dict(self) -> dict[str, Any]:
        """The features as the JSON format gave them: None for missing, ints for whole-number
        columns, in the store's feature order."""
        numbers, texts, whole = self.numbers.tolist(), self.texts, self.layout.integers
        out = {}
        for name, packed, i in self.layout.order:
            if packed:
                v = numbers[i]
                out[name] = None if v != v else int(v) if name in whole else v
            else:
                out[name] = texts[i]
        return out

"""The scoring core: feature specification + LightGBM booster + calibrator, as one object.

Training builds a :class:`ChurnScorer` and logs it to MLflow; serving and batch jobs load it and
score with plain numpy (no pandas, no pyfunc in the hot path). Categorical features are encoded
with the categories seen at training; an unseen category becomes missing, which LightGBM handles.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.errors import BadInput
from features.numeric import logit, sigmoid
from features.spec import CATEGORY, FeatureSpec
from scoring.limits import Limits, record, restore
from scoring.linear import LinearPart
from scoring.paths import PathExplainer, top_positive

PATH, SHAP = "path", "shap"  # how feature contributions are computed (see scoring/paths.py)


class ScoringInputError(BadInput):
    """The input cannot be scored by this model (missing columns, wrong values)."""


def encode_frame(frame: pd.DataFrame, features: list[str], kinds: list[str],
                 categories: dict[str, list[str]], order: str = "C") -> np.ndarray:
    """Features as a float matrix in the given order; a category becomes its training code and an
    unseen one becomes missing.

    Plain numeric columns (numpy float or int: nearly all of them) are converted as blocks of
    adjacent columns, by pandas in one call each; the others one by one, with their checks.
    ``order="F"`` (column-major) saves the transposing copy of a row-major matrix; the values are
    the same either way.
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ScoringInputError(f"{len(missing)} feature columns are missing: "
                                f"{', '.join(missing[:10])}")
    out = np.empty((len(frame), len(features)), dtype=np.float64, order=order)
    plain = [kind != CATEGORY and isinstance(frame[name].dtype, np.dtype)
             and frame[name].dtype.kind in "fiu" for name, kind in zip(features, kinds, strict=True)]
    start = None
    for j in range(len(features) + 1):
        if j < len(features) and plain[j]:
            start = j if start is None else start
            continue
        if start is not None:  # a run of plain numeric columns ends before j
            out[:, start:j] = frame[features[start:j]].to_numpy(np.float64)
            start = None
        if j < len(features):
            out[:, j] = _encode_column(frame[features[j]], features[j], kinds[j], categories)
    return out


def _encode_column(values: pd.Series, name: str, kind: str,
                   categories: dict[str, list[str]]) -> np.ndarray:
    if kind == CATEGORY:  # matched as text; missing and unseen values have code -1
        text = values if pd.api.types.is_string_dtype(values) else values.astype("str")
        codes = pd.Categorical(text, categories=categories[name]).codes
        return np.where(codes < 0, np.nan, codes.astype(np.float64))
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numeric.isna()
    if bad.any():
        examples = values[bad].head(3).tolist()
        raise ScoringInputError(f"column {name} must be numeric; found {examples}")
    return numeric.to_numpy(np.float64, na_value=np.nan)


@dataclass(frozen=True)
class Calibrator:
    """Maps raw LightGBM probabilities to calibrated ones: isotonic (a step curve) or Platt."""

    kind: str  # "isotonic" | "sigmoid" | "identity"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.kind == "isotonic":
            return np.interp(p, *self._curve)
        if self.kind == "sigmoid":
            return sigmoid(self.a * logit(p) + self.b)
        return p

    @cached_property
    def _curve(self) -> tuple[np.ndarray, np.ndarray]:  # the steps as arrays, converted once
        return np.asarray(self.x, dtype=np.float64), np.asarray(self.y, dtype=np.float64)


@dataclass
class ChurnScorer:
    features: list[str]
    kinds: list[str]
    categories: dict[str, list[str]]
    booster: lgb.Booster
    calibrator: Calibrator
    specs: list[FeatureSpec]
    meta: dict[str, Any] = field(default_factory=dict)
    # a blend with a linear model: margin = tree_weight x trees + (1 - tree_weight) x linear
    linear: LinearPart | None = None
    tree_weight: float = 1.0

    def __post_init__(self):
        self._codes = {name: {c: float(i) for i, c in enumerate(cats)}
                       for name, cats in self.categories.items()}
        self._spec = {s.name: s for s in self.specs}
        self._position = {name: i for i, name in enumerate(self.features)}
        self._explainer: PathExplainer | None = None
        self._limits: Limits | None = None
        method = self.meta.get("contribution_method", PATH)
        if method not in (PATH, SHAP):
            raise ValueError(f"contribution_method must be {PATH!r} or {SHAP!r}, got {method!r}")
        self.contribution_method = method

    # --- building the matrix ----------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame, order: str = "C") -> np.ndarray:
        """A float matrix in training column order; categories as training codes (``order``:
        row-major "C" or column-major "F", as ``encode_frame``)."""
        return encode_frame(frame, self.features, self.kinds, self.categories, order)

    def row(self, features: dict[str, Any], ignore_unknown: bool = False
            ) -> tuple[np.ndarray, list[str]]:
        """One customer's feature vector from a dict (the online path: no pandas).

        Returns the vector and the list of problems (unknown names unless ``ignore_unknown``,
        non-numeric values). Absent features are missing values, as LightGBM allows.
        """
        problems = ([] if ignore_unknown else
                    [f"unknown feature {k!r}" for k in features if k not in self._position])
        x = np.full(len(self.features), np.nan)
        for name, value in features.items():
            j = self._position.get(name)
            if j is None or value is None:
                continue
            if self.kinds[j] == CATEGORY:
                x[j] = self._codes[name].get(str(value), np.nan)
            elif isinstance(value, bool):
                x[j] = float(value)
            elif isinstance(value, int | float):
                try:
                    number = float(value)
                except OverflowError:  # an integer past float's range (JSON allows any)
                    number = math.nan
                if not math.isfinite(number):
                    problems.append(f"feature {name!r} is not a finite number")
                x[j] = number
            else:
                problems.append(f"feature {name!r} must be a number, got {type(value).__name__}")
        return x, problems

    # --- scoring ----------------------------------------------------------------------------
    def raw(self, x: np.ndarray, threads: int = 0) -> np.ndarray:
        """The uncalibrated probability: the trees', or the blend's."""
        if self.linear is None:
            return self.booster.predict(x, num_threads=threads)
        return sigmoid(self.margin(x, threads))

    def margin(self, x: np.ndarray, threads: int = 0) -> np.ndarray:
        """The uncalibrated log-odds (trees and linear part blended)."""
        tree = (self._link * self.booster.predict(x, raw_score=True, num_threads=threads)
                if self.tree_weight > 0 else np.zeros(len(x)))
        if self.linear is None:
            return tree
        return self.tree_weight * tree + (1 - self.tree_weight) * self.linear.margin(x)

    def predict(self, x: np.ndarray, threads: int = 0) -> np.ndarray:
        """Calibrated churn probabilities."""
        return np.clip(self.calibrator(self.raw(x, threads)), 0.0, 1.0)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict(self.matrix(frame))

    def contributions(self, x: np.ndarray, threads: int = 0) -> np.ndarray:
        """Per-feature contributions to the raw log-odds; last column = bias. Decision-path
        attribution by default (``contribution_method`` in the model's meta), or exact TreeSHAP."""
        if self.contribution_method == SHAP:
            tree = self.booster.predict(x, pred_contrib=True, num_threads=threads)
        else:
            tree = self.explainer.contributions(x, threads)
        return self._blend_contributions(tree, x)

    def _blend_contributions(self, tree: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.linear is None:
            return tree
        return (self.tree_weight * self._link * tree
                + (1 - self.tree_weight) * self.linear.contributions(x))

    @property
    def _link(self) -> float:
        """LightGBM's sigmoid parameter: its raw score times this is the log-odds."""
        return self.explainer.sigmoid or 1.0

    def predict_explain(self, x: np.ndarray, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and contributions in one pass over the trees (path method):
        the walk that attributes also yields the raw score, so no second prediction is made."""
        if self.contribution_method == SHAP or self.explainer.sigmoid is None:
            return self.predict(x, threads), self.contributions(x, threads)
        raw, contrib = self.explainer.explain(x, threads)
        if self.linear is None:
            p = sigmoid(self.explainer.sigmoid * raw)
            return np.clip(self.calibrator(p), 0.0, 1.0), contrib
        contrib = self._blend_contributions(contrib, x)
        p = sigmoid(contrib.sum(axis=1))
        return np.clip(self.calibrator(p), 0.0, 1.0), contrib

    def predict_top(self, x: np.ndarray, k: int, threads: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated probabilities and each row's ``k`` largest positive contributions (column
        indices, largest first, padded with -1; and their values): what reasons need, without a
        rows x features array of contributions (path method: one compiled pass per block)."""
        if self.contribution_method == SHAP or self.explainer.sigmoid is None:
            p, contrib = self.predict_explain(x, threads)
            order = top_positive(contrib[:, :len(self.features)], k)
            top = np.where(order >= 0, np.take_along_axis(contrib, np.maximum(order, 0), 1), 0.0)
            return p, order, top
        if self.linear is None:
            raw, order, top = self.explainer.explain_top(x, k, threads)
            p = sigmoid(self.explainer.sigmoid * raw)
        else:
            margin, order, top = self.explainer.explain_top(
                x, k, threads, self.linear.contributions(x), self.tree_weight * self._link,
                1 - self.tree_weight)
            p = sigmoid(margin)
        return np.clip(self.calibrator(p), 0.0, 1.0), order, top

    @property
    def explainer(self) -> PathExplainer:
        if self._explainer is None:
            self._explainer = PathExplainer(self.booster)
        return self._explainer

    def feature_config(self, default: FeatureConfig) -> FeatureConfig:
        """The feature settings the model was trained with (its event vocabulary included), so
        that features built for scoring have the model's columns; ``default`` for older models."""
        recorded = self.meta.get("features_config")
        return FeatureConfig(**recorded) if recorded else default

    @property
    def limits(self) -> Limits:
        """The values this model accepts (see ``scoring.limits``)."""
        if self._limits is None:
            self._limits = Limits.of(self.features, self.kinds, self.specs)
        return self._limits

    def spec(self, name: str) -> FeatureSpec:
        return self._spec[name]

    def decode(self, name: str, value: float):
        """A matrix value back to what a person reads (the category for categorical features)."""
        j = self._position[name]
        if self.kinds[j] == CATEGORY:
            if np.isnan(value):
                return None
            return self.categories[name][int(value)]
        return None if np.isnan(value) else float(value)

    # --- persistence ------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "booster.txt"))
        specs, meta = record(self.specs, self.meta, self.booster)  # with the values it accepts
        spec = {"features": self.features, "kinds": self.kinds, "categories": self.categories,
                "calibrator": asdict(self.calibrator), "specs": specs, "meta": meta,
                "tree_weight": self.tree_weight,
                "linear": self.linear.as_dict() if self.linear is not None else None}
        (folder / "scorer.json").write_text(json.dumps(spec, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ChurnScorer:
        folder = Path(folder)
        spec = json.loads((folder / "scorer.json").read_text())
        cal = spec["calibrator"]
        return cls(features=spec["features"], kinds=spec["kinds"], categories=spec["categories"],
                   booster=lgb.Booster(model_file=str(folder / "booster.txt")),
                   calibrator=Calibrator(cal["kind"], tuple(cal["x"]), tuple(cal["y"]),
                                         cal["a"], cal["b"]),
                   specs=restore(spec["specs"], spec["meta"]), meta=spec["meta"],
                   linear=LinearPart.from_dict(spec["linear"]) if spec.get("linear") else None,
                   tree_weight=float(spec.get("tree_weight", 1.0)))

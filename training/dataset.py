"""Training data for both paths, split into fit / valid (early stopping) / calib / hold-out.

- Event path: a point-in-time feature set; the latest complete cutoff(s) are the out-of-time
  hold-out, earlier cutoffs are split by customer (a customer never sits on both sides).
- Table path: any customer table a data scientist brings; a seeded stratified split, or a time
  split when a time column is named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import FeatureSet
from features.config import LabelConfig
from features.errors import BadInput
from features.labels import horizon_end, is_observed, population_rule
from features.spec import CATEGORY, FeatureSpec, column_spec, kind_of
from scoring.scorer import encode_frame
from training.config import TrainConfig

log = logging.getLogger(__name__)

FIT, VALID, CALIB, HOLDOUT = "fit", "valid", "calib", "holdout"
_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "false", "f", "no", "n"}


class TrainingInputError(BadInput):
    """The training input cannot be used as it is; the message says why and where."""


@dataclass
class TrainingData:
    features: list[str]
    kinds: list[str]
    categories: dict[str, list[str]]
    specs: list[FeatureSpec]
    frame: pd.DataFrame  # the rows: id (and cutoff), features, label
    id_column: str
    x: np.ndarray
    y: np.ndarray
    part: np.ndarray  # FIT / VALID / CALIB / HOLDOUT per row
    source: str  # "events" | "table"

    def rows(self, part: str) -> np.ndarray:
        return self.part == part

    def xy(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        m = self.rows(part)
        return self.x[m], self.y[m]


def _kinds_and_categories(frame: pd.DataFrame, features: list[str], fit_rows: np.ndarray):
    kinds, categories = [], {}
    for name in features:
        values = frame[name]
        kinds.append(kind_of(values))
        if kinds[-1] == CATEGORY:
            seen = values[fit_rows].dropna().astype("str")
            categories[name] = sorted(seen.unique().tolist())
    return kinds, categories


def _split_by_customer(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FIT 70% / VALID 15% / CALIB 15% of customers (all of a customer's rows together)."""
    unique = pd.unique(ids)
    draw = rng.random(len(unique))
    side = np.where(draw < 0.70, FIT, np.where(draw < 0.85, VALID, CALIB))
    return pd.Series(side, index=unique).reindex(ids).to_numpy()


def from_feature_set(fs: FeatureSet, config: TrainConfig) -> TrainingData:
    labels = fs.label_config or LabelConfig()
    if fs.frame.empty:
        raise TrainingInputError(
            "the feature set has no rows: no customer is in the population at any cutoff (the "
            f"{labels.definition} population is customers who {population_rule(labels)})")
    frame = fs.frame[fs.frame["label"].notna()].reset_index(drop=True)
    dropped = len(fs.frame) - len(frame)
    if dropped:
        log.info("%d rows have no label yet (horizon beyond the data) and are not used", dropped)
    cutoffs = sorted(frame["cutoff"].unique())
    if len(cutoffs) < config.holdout_cutoffs + 1:
        raise TrainingInputError(
            f"need at least {config.holdout_cutoffs + 1} cutoffs with complete labels (training "
            f"plus {config.holdout_cutoffs} out-of-time hold-out); got "
            f"{[str(pd.Timestamp(c).date()) for c in cutoffs] or 'none'}"
            + _unlabelled_note(fs, labels))
    holdout_from = cutoffs[-config.holdout_cutoffs]
    _check_observed(cutoffs, holdout_from, labels, fs.data_end)
    rng = np.random.default_rng(config.seed)
    part = _split_by_customer(frame["customer_id"].to_numpy(), rng)
    part[(frame["cutoff"] >= holdout_from).to_numpy()] = HOLDOUT
    features = [s.name for s in fs.specs]
    kinds, categories = _kinds_and_categories(frame, features, part == FIT)
    y = frame["label"].to_numpy(np.float64)
    _check_both_classes(y, part)
    x = encode_frame(frame, features, kinds, categories)
    return TrainingData(features, kinds, categories, list(fs.specs), frame, "customer_id", x, y,
                        part, "events")


def _unlabelled_note(fs: FeatureSet, labels: LabelConfig) -> str:
    """Why cutoffs have no labels, when it is because the data ends before their horizon."""
    unlabelled = sorted(set(fs.frame["cutoff"].unique()) - set(
        fs.frame.loc[fs.frame["label"].notna(), "cutoff"].unique()))
    if not unlabelled or fs.data_end is None or pd.isna(fs.data_end):
        return ""
    first = pd.Timestamp(unlabelled[0])
    return (f"; cutoff {first.date()} and later are not labelled: the {labels.horizon_days}-day "
            f"horizon of {first.date()} ends {horizon_end(first, labels)}, after the data's end "
            f"{pd.Timestamp(fs.data_end)}")


def _check_observed(cutoffs: list, holdout_from, labels: LabelConfig, data_end) -> None:
    """Refuse labels from a horizon the data does not cover in full (a feature set built with a
    wrong data end, or by other code): above all on the hold-out, which decides promotion."""
    if data_end is None or pd.isna(data_end):
        log.warning("the feature set does not record the data's end; its labels are trusted as "
                    "they are")
        return
    for cutoff in sorted(cutoffs, reverse=True):
        if not is_observed(cutoff, labels, data_end):
            role = "hold-out cutoff" if cutoff >= holdout_from else "cutoff"
            raise TrainingInputError(
                f"{role} {pd.Timestamp(cutoff).date()} is not fully observed: its "
                f"{labels.horizon_days}-day label horizon ends {horizon_end(cutoff, labels)} but "
                f"the data ends {pd.Timestamp(data_end)}; its labels cannot be known yet (use "
                "an earlier cutoff or data that reaches the horizon's end)")


def parse_label(values: pd.Series, column: str) -> np.ndarray:
    """0/1, true/false or yes/no (any case) to 0.0/1.0; anything else is an error."""
    if values.isna().any():
        rows = values.index[values.isna()][:5].tolist()
        raise TrainingInputError(f"label column {column!r} has {int(values.isna().sum())} missing "
                                 f"values (rows {rows})")
    text = values.astype("str").str.strip().str.lower()
    ones, zeros = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(ones | zeros)
    if bad.any():
        found = sorted(text[bad].unique().tolist())[:8]
        raise TrainingInputError(f"label column {column!r} is not binary: found {found}; use "
                                 "0/1, true/false or yes/no")
    y = ones.to_numpy(np.float64)
    if y.min() == y.max():
        raise TrainingInputError(f"label column {column!r} has only one class ({int(y[0])})")
    return y


def _label_copies(frame: pd.DataFrame, features: list[str], y: np.ndarray) -> list[str]:
    """Columns that give the label away: a function of few values, or a perfect ranking."""
    copies = []
    for name in features:
        values = frame[name]
        known = values.notna().to_numpy()
        if known.sum() < 10:
            continue
        v, t = values[known], y[known]
        if v.nunique() <= 10:
            if pd.DataFrame({"v": v.astype("str").to_numpy(), "t": t}).groupby("v")["t"] \
                    .nunique().max() == 1 and len(np.unique(t)) == 2:
                copies.append(name)
        elif pd.api.types.is_numeric_dtype(v):
            lo, hi = v[t == 0], v[t == 1]
            if len(lo) and len(hi) and (lo.max() < hi.min() or hi.max() < lo.min()):
                copies.append(name)
    return copies


def from_table(frame: pd.DataFrame, id_column: str, label_column: str, config: TrainConfig,
               time_column: str | None = None, source_name: str = "table") -> TrainingData:
    if frame.empty:
        raise TrainingInputError(f"{source_name} has no rows")
    for role, col in (("id", id_column), ("label", label_column), ("time", time_column)):
        if col is not None and col not in frame.columns:
            raise TrainingInputError(f"{role} column {col!r} is not in {source_name}; columns: "
                                     f"{', '.join(map(str, frame.columns[:15]))}")
    frame = frame.reset_index(drop=True)
    y = parse_label(frame[label_column], label_column)
    if time_column is None and frame[id_column].duplicated().any():
        dup = frame.loc[frame[id_column].duplicated(keep=False), id_column].head(5).tolist()
        raise TrainingInputError(f"id column {id_column!r} has duplicated ids, e.g. {dup}")
    candidates = [c for c in frame.columns if c not in (id_column, label_column, time_column)]
    features = []
    for name in candidates:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            log.warning("column %s is a date and is not used as a feature", name)
        elif values.nunique(dropna=False) <= 1:
            log.warning("column %s is constant and is not used as a feature", name)
        elif (not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
              and values.nunique() > 0.9 * len(values) and len(values) > 50):
            log.warning("column %s looks like an id (almost all values differ); not used", name)
        else:
            features.append(name)
    if not features:
        raise TrainingInputError(f"{source_name} has no usable feature columns")
    copies = _label_copies(frame, features, y)
    if copies:
        raise TrainingInputError(
            f"column(s) {copies} give the label {label_column!r} away (a copy of it, or a perfect "
            "split of it); drop them or name the right label")
    part = _table_split(frame, y, config, time_column)
    kinds, categories = _kinds_and_categories(frame, features, part == FIT)
    specs = [column_spec(name, kind, "table", f"column {name}")
             for name, kind in zip(features, kinds, strict=True)]
    _check_both_classes(y, part)
    x = encode_frame(frame, features, kinds, categories)
    rows = frame[[id_column] + features].copy()
    rows["label"] = y
    if time_column:
        rows[time_column] = frame[time_column]
    return TrainingData(features, kinds, categories, specs, rows, id_column, x, y, part, "table")


def _table_split(frame: pd.DataFrame, y: np.ndarray, config: TrainConfig,
                 time_column: str | None) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    n = len(frame)
    part = np.empty(n, dtype=object)
    if time_column is not None:
        order = np.argsort(pd.to_datetime(frame[time_column]).to_numpy(), kind="stable")
        holdout = np.zeros(n, dtype=bool)
        holdout[order[int(n * (1 - config.holdout_fraction)):]] = True
    else:  # stratified: the same share of each class in the hold-out
        holdout = np.zeros(n, dtype=bool)
        for cls in (0.0, 1.0):
            idx = np.flatnonzero(y == cls)
            take = rng.permutation(idx)[: int(round(len(idx) * config.holdout_fraction))]
            holdout[take] = True
    draw = rng.random(n)
    part[:] = np.where(draw < 0.70, FIT, np.where(draw < 0.85, VALID, CALIB))
    part[holdout] = HOLDOUT
    return part.astype(str)


def _check_both_classes(y: np.ndarray, part: np.ndarray) -> None:
    for p in (FIT, VALID, HOLDOUT):
        values = np.unique(y[part == p])
        if len(values) < 2:
            raise TrainingInputError(f"the {p} rows hold only one class ({values.tolist()}); more "
                                     "data (or more cutoffs) is needed")

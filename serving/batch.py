"""Batch scoring (first version): score a feature table with a registered model, write atomically."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from features.io import read_frame, write_frame
from serving.model_store import LoadedModel
from serving.scorer import ScoringInputError

log = logging.getLogger(__name__)


def score_frame(model: LoadedModel, frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    if id_column not in frame.columns:
        raise ScoringInputError(f"id column {id_column!r} is not in the table; columns: "
                                f"{', '.join(map(str, frame.columns[:15]))}")
    if frame.empty:
        raise ScoringInputError("the table to score has no rows")
    p = model.scorer.predict_frame(frame)
    out = pd.DataFrame({id_column: frame[id_column].to_numpy(), "churn_probability": p})
    if "cutoff" in frame.columns:
        out["cutoff"] = frame["cutoff"].to_numpy()
    out["model_name"] = model.name or ""
    out["model_version"] = model.version or ""
    return out


def score_table(model: LoadedModel, table: Path, id_column: str, out: Path) -> pd.DataFrame:
    """Read ``table``, score every row, write ``out`` (Parquet or CSV) only when all succeeded."""
    frame = read_frame(table)
    scored = score_frame(model, frame, id_column)
    write_frame(scored, out)
    log.info("scored %d rows of %s into %s", len(scored), table, out)
    return scored

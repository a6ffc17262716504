"""The batch scoring job: the whole base scored in chunks, offers allocated, nothing lost.

Rows in = rows out + rows quarantined, always. Output and manifest appear atomically (written
aside, then renamed); a killed job leaves no partial file under the final name, and a rerun writes
the same rows. Rows that cannot be scored go to a quarantine file with a reason each; the job
fails (and writes no output) when they exceed ``max_quarantine_share``. The end of the job
(allocation and writing) is ``jobs.batch_output``, shared with the Spark engine.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.spec import CATEGORY
from jobs.batch_output import (
    BatchConfig,
    BatchError,
    BatchSummary,
    ScoredRows,
    fingerprint_file,
    finish,
)
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.policy import Options, options
from scoring.offers.uplift import offer_effects
from scoring.reasons import reason_texts
from scoring.scorer import PATH, ScoringInputError

log = logging.getLogger(__name__)

__all__ = ["BatchConfig", "BatchError", "BatchSummary", "run_batch", "score_table",
           "score_chunk", "quarantine_mask"]


# --- the pure part: one chunk -------------------------------------------------------------------
def quarantine_mask(core: ScoringCore, chunk: pd.DataFrame, x: np.ndarray,
                    config: BatchConfig) -> np.ndarray:
    """Per row, why it cannot be scored ("" when it can)."""
    why = np.full(len(chunk), "", dtype=object)
    ids = chunk[config.id_column]
    why[ids.isna().to_numpy()] = f"{config.id_column} is missing"
    finite = np.isfinite(x) | np.isnan(x)
    bad_num = ~finite.all(axis=1)
    why[bad_num & (why == "")] = "a feature is infinite"
    if config.unknown_category == "quarantine":
        scorer = core.model.scorer
        for j, (name, kind) in enumerate(zip(scorer.features, scorer.kinds, strict=True)):
            if kind == CATEGORY:
                unseen = chunk[name].notna().to_numpy() & np.isnan(x[:, j])
                why[unseen & (why == "")] = f"unknown category in {name}"
    return why


def score_chunk(core: ScoringCore, x: np.ndarray, top_k: int,
                reasons_min_band: str = "low") -> tuple[dict, Options]:
    """Probabilities, bands, reasons (JSON) and every offer's net value for a block of rows.

    With path contributions (the default) one walk over the trees gives the probabilities and
    every row's contributions. With exact TreeSHAP (~100x a prediction) contributions are computed
    only for the rows given reasons. Offer effects need only the features and the probability.
    """
    scorer = core.model.scorer
    floor = core.bands.floor(reasons_min_band)
    contrib = None
    if scorer.contribution_method == PATH and top_k > 0:
        p, contrib = scorer.predict_explain(x)
    else:
        p = scorer.predict(x)
    wants = (p >= floor) if top_k > 0 else np.zeros(len(p), dtype=bool)
    if contrib is None and wants.any():
        contrib = np.zeros((len(x), len(scorer.features) + 1))
        contrib[wants] = scorer.contributions(x[wants])
    reasons = (reason_texts(scorer, x, contrib, top_k, wants) if contrib is not None
               else np.full(len(x), "[]", dtype=object))
    opts = options(core.customers(x, p), offer_effects(core.model.uplift, x, p, core.catalogue),
                   core.catalogue)
    return {"churn_probability": p, "risk_band": core.bands.bands(p), "reasons": reasons}, opts


# --- the wiring: reading, writing, accounting ---------------------------------------------------
def _chunks(source: pd.DataFrame | Path, size: int) -> Iterator[pd.DataFrame]:
    if isinstance(source, pd.DataFrame):
        for start in range(0, len(source), size):
            yield source.iloc[start:start + size].reset_index(drop=True)
        return
    path = Path(source)
    if path.suffix.lower() == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=size, low_memory=False)


def _progress(total: int | None):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rows", desc="scoring", file=sys.stderr)



def _clean_stale(out: Path) -> None:
    for stale in out.parent.glob(f".{out.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def run_batch(model: LoadedModel, core: ScoringCore, source: pd.DataFrame | Path, out: Path,
              config: BatchConfig, input_fingerprint: str, cutoff: str | None = None
              ) -> BatchSummary:
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise BatchError(f"--out must end in .parquet or .csv, got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    stage = out.with_name(f".{out.name}.{os.getpid()}.stage.tmp")
    scored = ScoredRows(stage, core.catalogue.costs, input_fingerprint,
                        datetime.now(UTC).replace(microsecond=0).isoformat())
    total = len(source) if isinstance(source, pd.DataFrame) else (
        pq.ParquetFile(source).metadata.num_rows if Path(source).suffix == ".parquet" else None)
    bar = _progress(total)
    writer = None
    try:
        for chunk in _chunks(source, config.chunk_size):
            scored.summary.rows_in += len(chunk)
            table = _score_and_stage(core, chunk, config, cutoff, scored)
            if table is not None:
                if writer is None:
                    writer = pq.ParquetWriter(stage, table.schema)
                writer.write_table(table)
            if bar:
                bar.update(len(chunk))
        if writer is not None:
            writer.close()
            writer = None
        return finish(model, core, scored, out, config)
    finally:
        if writer is not None:
            writer.close()
        if bar:
            bar.close()
        stage.unlink(missing_ok=True)


def _score_and_stage(core: ScoringCore, chunk: pd.DataFrame, config: BatchConfig,
                     cutoff: str | None, scored: ScoredRows) -> pa.Table | None:
    """Score one chunk: quarantined rows to ``scored.quarantine``, offer values to ``scored``,
    the scored rows returned as a table to stage (None when no row could be scored)."""
    if config.id_column not in chunk.columns:
        raise BatchError(f"the input has no {config.id_column!r} column")
    try:
        x = core.model.scorer.matrix(chunk)
    except ScoringInputError as exc:
        raise BatchError(str(exc)) from exc
    why = quarantine_mask(core, chunk, x, config)
    bad = why != ""
    if bad.any():
        q = chunk.loc[bad, [config.id_column]].copy()
        q["reason"] = why[bad]
        scored.quarantine.append(q)
    good = ~bad
    if not good.any():
        return None
    cols, opts = score_chunk(core, x[good], config.top_reasons, config.reasons_min_band)
    frame = pd.DataFrame({"customer_id": chunk.loc[good, config.id_column].astype(str).to_numpy(),
                          **cols})
    frame["cutoff"] = (str(pd.Timestamp(chunk.loc[good, "cutoff"].iloc[0]).date())
                       if "cutoff" in chunk.columns else (cutoff or ""))
    scored.add(cols["churn_probability"], opts.net, opts.reduction)
    return pa.Table.from_pandas(frame, preserve_index=False)


def score_table(model: LoadedModel, core: ScoringCore, table: Path, out: Path,
                config: BatchConfig) -> BatchSummary:
    """Score a feature table (Parquet or CSV) that has the model's feature columns."""
    table = Path(table)
    if not table.exists():
        raise FileNotFoundError(f"{table} does not exist")
    if table.suffix.lower() not in (".parquet", ".csv"):
        raise BatchError(f"{table.name}: expected a .parquet or .csv file")
    return run_batch(model, core, table, out, config, fingerprint_file(table))

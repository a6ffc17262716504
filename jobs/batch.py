"""The batch scoring job: the whole base scored in chunks, offers allocated, nothing lost.

Rows in = rows out + rows quarantined, always, and the output does not depend on the chunk size:
each row keeps its own cutoff, and every copy of a (customer, cutoff) key found more than once in
the whole input is quarantined ("duplicate key"; a first pass reads the key columns only:
``jobs.batch_keys``). Rows that cannot be scored (missing id, infinite values, values the model's
specification forbids, every feature empty: ``scoring.limits``) go to a quarantine file with a
reason each, counted per reason in the manifest; the job fails (and writes no output) when they
exceed ``max_quarantine_share``. An input with no rows, or none left to score, gives an empty
output with its quarantine and manifest and a warning. The input (chunks read ahead, each with the
model's matrix) is ``jobs.batch_read``; the end of the job (allocation and writing, output
committed before manifest) is ``jobs.batch_output``, shared with the Spark engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.spec import CATEGORY
from jobs.batch_commit import writing_in
from jobs.batch_keys import CUTOFF, cutoff_text, duplicated_keys, row_keys
from jobs.batch_output import (
    BatchConfig,
    BatchError,
    BatchSummary,
    ScoredRows,
    clean_stale,
    fingerprint_file,
    finish,
)
from jobs.batch_read import Chunk, columns, model_chunks, read_ahead, row_count
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.policy import Options
from scoring.reasons import reason_texts, top_positive
from scoring.scorer import PATH

log = logging.getLogger(__name__)

__all__ = ["BatchConfig", "BatchError", "BatchSummary", "run_batch", "score_table",
           "score_chunk", "quarantine_mask"]


# --- the pure part: one chunk -------------------------------------------------------------------
DUPLICATE_KEY = "duplicate key"  # every copy of a (customer, cutoff) key seen more than once


def quarantine_mask(core: ScoringCore, chunk: pd.DataFrame, x: np.ndarray,
                    config: BatchConfig, duplicated: np.ndarray | None = None,
                    cutoffs: np.ndarray | None = None) -> np.ndarray:
    """Per row, why it cannot be scored ("" when it can). ``duplicated``: rows whose key occurs
    more than once in the whole input (every copy is quarantined: which one is right is not ours
    to guess). ``chunk``: the id, the cutoff and the features that are not plain numbers at
    least (the others are read from ``x``); ``cutoffs``: its ``cutoff_text`` when already made."""
    why = np.full(len(chunk), "", dtype=object)
    ids = chunk[config.id_column]
    why[ids.isna().to_numpy()] = f"{config.id_column} is missing"
    if CUTOFF in chunk.columns:
        text = cutoff_text(chunk[CUTOFF]) if cutoffs is None else cutoffs
        why[(text == "") & (why == "")] = "cutoff is missing or not a date"
    if duplicated is not None:
        why[duplicated & (why == "")] = DUPLICATE_KEY
    why[np.isinf(x).any(axis=1) & (why == "")] = "a feature is infinite"
    scorer = core.model.scorer
    booleans = scorer.limits.boolean_reasons(chunk)
    is_bool = (booleans != "") & (why == "")
    why[is_bool] = booleans[is_bool]
    if config.unknown_category == "quarantine":
        for j, (name, kind) in enumerate(zip(scorer.features, scorer.kinds, strict=True)):
            if kind == CATEGORY:
                unseen = chunk[name].notna().to_numpy() & np.isnan(x[:, j])
                why[unseen & (why == "")] = f"unknown category in {name}"
    limits = scorer.limits.reasons(x)
    outside = (limits != "") & (why == "")
    why[outside] = limits[outside]
    return why


SCORE_BLOCK = 10_000  # rows scored at once: half the temporaries of 20,000, as fast (measured)


def score_chunk(core: ScoringCore, x: np.ndarray, top_k: int,
                reasons_min_band: str = "low", block: int = SCORE_BLOCK) -> tuple[dict, Options]:
    """Probabilities, bands, reasons (JSON) and every offer's net value for a block of rows.

    With path contributions (the default) one walk over the trees gives the probabilities and
    every row's contributions. With exact TreeSHAP (~100x a prediction) contributions are computed
    only for the rows given reasons. Offer effects need only the features and the probability.
    Every row's values are its own: the rows are scored ``block`` at a time (the scoring's
    temporaries, e.g. a blended model's linear contributions, are a few rows x features arrays:
    their memory is set by the block, not by the chunk read), with the same values.
    """
    parts = [_score_rows(core, x if len(x) <= block else np.asfortranarray(x[s:s + block]),
                         top_k, reasons_min_band) for s in range(0, max(len(x), 1), block)]
    if len(parts) == 1:
        p, reasons, opts = parts[0]
    else:
        p = np.concatenate([q for q, _, _ in parts])
        reasons = np.concatenate([r for _, r, _ in parts])
        opts = Options(np.concatenate([o.net for _, _, o in parts]),
                       np.concatenate([o.reduction for _, _, o in parts]), parts[0][2].costs,
                       np.concatenate([o.cooling for _, _, o in parts]))
    return {"churn_probability": p, "risk_band": core.bands.bands(p), "reasons": reasons}, opts


def _score_rows(core: ScoringCore, x: np.ndarray, top_k: int, reasons_min_band: str
                ) -> tuple[np.ndarray, np.ndarray, Options]:
    """``score_chunk`` for one block: probabilities, reasons and options."""
    scorer = core.model.scorer
    floor = core.bands.floor(reasons_min_band)
    order = None
    if scorer.contribution_method == PATH and top_k > 0:
        # one compiled pass: scores and each row's top contributions (no rows x features array)
        p, order, _ = scorer.predict_top(x, top_k)
    else:
        p = scorer.predict(x)
    wants = (p >= floor) if top_k > 0 else np.zeros(len(p), dtype=bool)
    if order is None and wants.any():
        order = np.full((len(x), top_k), -1, dtype=np.int64)
        order[wants] = top_positive(scorer.contributions(x[wants])[:, :len(scorer.features)],
                                    top_k)
    reasons = (reason_texts(scorer, x, None, top_k, wants, order=order) if order is not None
               else np.full(len(x), "[]", dtype=object))
    _, opts = core.offer_options(x, p)
    return p, reasons, opts


# --- the wiring: reading (``jobs.batch_read``), writing, accounting ----------------------------
def _release_unused() -> None:
    """Give the memory freed by the scoring back to the system before the end of the job:
    Arrow's pool, and the C heap (glibc keeps the freed pages of the chunks' temporaries
    resident, and the end's per-row arrays would come on top of them)."""
    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(name).malloc_trim(0)


def _progress(total: int | None):
    """The shared progress bar (a terminal only, off under --quiet, on with CHURN_PROGRESS=1)."""
    from features.progress import bar

    return bar(total=total, desc="scoring", unit="rows")


def run_batch(model: LoadedModel, core: ScoringCore, source: pd.DataFrame | Path, out: Path,
              config: BatchConfig, input_fingerprint: str, cutoff: str | None = None
              ) -> BatchSummary:
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise BatchError(f"--out must end in .parquet or .csv, got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    if not columns(source):
        raise BatchError("the input is empty: no columns, no rows")
    twice = duplicated_keys(source, config)
    stage = out.with_name(f".{out.name}.{os.getpid()}.stage.tmp")
    scored = ScoredRows(stage, core.catalogue.costs, input_fingerprint,
                        datetime.now(UTC).replace(microsecond=0).isoformat())
    bar = _progress(row_count(source))
    writer = None
    try:
        for chunk in read_ahead(model_chunks(source, core.model.scorer, config.chunk_size,
                                             [config.id_column, CUTOFF])):
            scored.summary.rows_in += len(chunk)
            table = _score_and_stage(core, chunk, config, cutoff, scored, twice)
            if table is not None:
                with writing_in(out.parent):
                    if writer is None:
                        writer = pq.ParquetWriter(stage, table.schema)
                    writer.write_table(table)
            bar.update(len(chunk))
        if writer is not None:
            with writing_in(out.parent):
                writer.close()
            writer = None
        _release_unused()  # the reading's and scoring's freed memory, before the write
        return finish(model, core, scored, out, config)
    finally:
        if writer is not None:
            with contextlib.suppress(OSError):  # e.g. the disk is full: the first error counts
                writer.close()
        bar.close()
        stage.unlink(missing_ok=True)


def _score_and_stage(core: ScoringCore, chunk: Chunk, config: BatchConfig,
                     cutoff: str | None, scored: ScoredRows, twice: set[str] = frozenset()
                     ) -> pa.Table | None:
    """Score one chunk: quarantined rows to ``scored.quarantine``, offer values to ``scored``,
    the scored rows returned as a table to stage (None when no row could be scored). Each row
    keeps its own cutoff (the table's column, else the job's)."""
    frame, x = chunk.frame, chunk.x
    if config.id_column not in frame.columns:
        raise BatchError(f"the input has no {config.id_column!r} column")
    cutoffs = cutoff_text(frame[CUTOFF]) if CUTOFF in frame.columns else None
    duplicated = row_keys(frame, config, cutoffs).isin(twice).to_numpy() if twice else None
    why = quarantine_mask(core, frame, x, config, duplicated, cutoffs)
    bad = why != ""
    if bad.any():
        q = frame.loc[bad, [config.id_column]].copy()
        if cutoffs is not None:
            q[CUTOFF] = cutoffs[bad]
        q["reason"] = why[bad]
        scored.quarantine.append(q)
    good = ~bad
    if not good.any():
        return None
    every = bool(good.all())  # the usual case: no copy of the matrix or the chunk
    ids = frame[config.id_column] if every else frame.loc[good, config.id_column]
    cols, opts = score_chunk(core, x if every else x[good], config.top_reasons,
                             config.reasons_min_band)
    if cutoffs is None:
        cutoffs = np.full(len(ids), cutoff or "", dtype=object)
    elif not every:
        cutoffs = cutoffs[good]
    out = pd.DataFrame({"customer_id": ids.astype(str).to_numpy(), **cols, CUTOFF: cutoffs})
    scored.add(cols["churn_probability"], opts.net, opts.reduction)
    return pa.Table.from_pandas(out, preserve_index=False)


def score_table(model: LoadedModel, core: ScoringCore, table: Path, out: Path,
                config: BatchConfig) -> BatchSummary:
    """Score a feature table (Parquet or CSV) that has the model's feature columns."""
    table = Path(table)
    if not table.exists():
        raise FileNotFoundError(f"{table} does not exist")
    if table.suffix.lower() not in (".parquet", ".csv"):
        raise BatchError(f"{table.name}: expected a .parquet or .csv file")
    return run_batch(model, core, table, out, config, fingerprint_file(table))

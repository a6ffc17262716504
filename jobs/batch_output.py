"""The end of a batch job: gather every scored row's offer values, allocate, write atomically.

Both engines (local chunks and Spark partitions) stage their scored rows as Parquet and hand a
``ScoredRows`` here; ``finish`` counts the quarantine, chooses the offers over the whole base
(``jobs.batch_offers``) and writes output, quarantine and manifest. Rows in = rows out + rows
quarantined, always.

The files are committed by ``jobs.batch_commit``: output first, manifest last, and a kill at any
point leaves the old pair or (once recovered) the new one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import BadInput
from jobs.batch_commit import (
    clean_stale,
    commit,
    companion_paths,
    fingerprint_file,
    read_committed,
    writing_in,
)
from jobs.batch_offers import Chosen, choose_offers
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.policy import NO_OFFER

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["customer_id", "churn_probability", "risk_band", "reasons", "offer_id",
                  "offer_expected_net_value", "offer_churn_reduction", "model_name",
                  "model_version", "cutoff", "scored_at"]


class BatchError(BadInput):
    pass


@dataclass(frozen=True)
class BatchConfig:
    chunk_size: int = 20_000  # 1M rows x 178 features: peak under 1 GB
    top_reasons: int = 3
    reasons_min_band: str = "low"  # reasons for every customer ("low"), or from this band up
    max_quarantine_share: float = 0.01
    unknown_category: str = "missing"  # "missing" (score it) or "quarantine"
    campaign_budget: float | None = None
    allocation: str = "greedy"
    id_column: str = "customer_id"


@dataclass
class BatchSummary:
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    expected_churners: float = 0.0
    offers: dict[str, int] = field(default_factory=dict)
    spend: float = 0.0
    expected_value_saved: float = 0.0
    expected_net_value: float = 0.0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # rows per reason

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ScoredRows:
    """What an engine scored, before the offers are chosen: the staged rows (a Parquet file or a
    folder of parts, in a stable order, with each row's probability) and, in the same order, the
    offer values of the rows that have an offer worth sending.

    Offer values are kept only for the rows that have an offer worth sending (some positive net
    value): no other row can be given one, by the budgeted allocation or without a budget, so
    the memory they take is set by those rows (8 bytes for the position and 16 per offer), not
    by the size of the base. Nothing else is kept per row: the probabilities are read back from
    the stage when the output is written."""

    stage: Path
    costs: np.ndarray  # cost of each catalogue offer
    fingerprint: str  # of the input, for the manifest
    scored_at: str
    summary: BatchSummary = field(default_factory=BatchSummary)
    rows: int = 0  # rows added so far
    where: list[np.ndarray] = field(default_factory=list)  # positions of the rows with an offer
    nets: list[np.ndarray] = field(default_factory=list)  # those rows x offers: net value
    reductions: list[np.ndarray] = field(default_factory=list)  # those rows x offers: churn cut
    quarantine: list[pd.DataFrame] = field(default_factory=list)  # id column + reason

    def add(self, probs: np.ndarray, nets: np.ndarray, reductions: np.ndarray) -> None:
        """The next rows' probabilities (counted here; the stage holds them) and (rows x offers)
        net values and churn reductions."""
        worth = np.flatnonzero((nets > 0).any(axis=1))
        self.where.append(worth + self.rows)
        self.nets.append(nets[worth])
        self.reductions.append(reductions[worth])
        self.rows += len(probs)


def finish(model: LoadedModel, core: ScoringCore, scored: ScoredRows, out: Path,
           config: BatchConfig) -> BatchSummary:
    """Count the quarantine (failing over the allowed share), choose offers, write everything."""
    summary = scored.summary
    account_quarantine(summary, scored.quarantine, config)
    if summary.rows_in == 0:
        log.warning("the input has no rows: writing an empty output and its manifest")
    elif summary.rows_scored == 0:
        log.warning("no row could be scored: all %d quarantined (%s); writing an empty output, "
                    "the quarantine and the manifest", summary.rows_in,
                    _reason_counts(scored.quarantine))
    write_outputs(model, core, scored, choose_offers(core, scored, config), out, config)
    return summary


def staged_parts(stage: Path, size: int) -> Iterator[pa.RecordBatch]:
    """The staged rows (a file, or a folder of part files from Spark) as Arrow batches, in a
    stable order: file by file in name order, each read batch by batch in this thread without
    pre-buffering (a dataset scanner's read-ahead on Arrow's threads held about 0.3 GB of a
    1M-row stage with its defaults, 0.2 GB with one batch ahead)."""
    stage = Path(stage)
    if not stage.exists():
        return
    for file in sorted(stage.glob("*.parquet")) if stage.is_dir() else [stage]:
        yield from pq.ParquetFile(file, pre_buffer=False).iter_batches(batch_size=size,
                                                                       use_threads=False)


def stage_batches(stage: Path, size: int) -> Iterator[pd.DataFrame]:
    """The staged scored rows (``staged_parts``) as frames, rows marked for quarantine (a
    non-empty ``quarantine_reason``) left out."""
    for batch in staged_parts(stage, size):
        frame = batch.to_pandas()
        if "quarantine_reason" in frame.columns:
            frame = frame[frame["quarantine_reason"] == ""].reset_index(drop=True)
        if len(frame):
            yield frame


def account_quarantine(summary: BatchSummary, quarantine: list[pd.DataFrame],
                       config: BatchConfig) -> None:
    """Count the quarantined rows; fail (before anything is written) over the allowed share."""
    summary.rows_quarantined = int(sum(len(q) for q in quarantine))
    summary.rows_scored = summary.rows_in - summary.rows_quarantined
    summary.quarantine_reasons = ({str(k): int(v) for k, v in
                                   pd.concat(quarantine)["reason"].value_counts().items()}
                                  if quarantine else {})
    share = summary.rows_quarantined / max(summary.rows_in, 1)
    if share > config.max_quarantine_share:
        raise BatchError(f"{summary.rows_quarantined} of {summary.rows_in} rows ({share:.1%}) "
                         f"cannot be scored, over the allowed {config.max_quarantine_share:.1%}; "
                         f"nothing was written. Reasons: {_reason_counts(quarantine)}")


def _reason_counts(parts: list[pd.DataFrame]) -> dict:
    if not parts:
        return {}
    return pd.concat(parts)["reason"].value_counts().head(5).to_dict()


def _write_rows(model: LoadedModel, core: ScoringCore, scored: ScoredRows, chosen: Chosen,
                target: Path, suffix: str, config: BatchConfig) -> tuple[int, float]:
    """Stream the staged rows, with their offers, into ``target``; returns the rows written and
    the sum of their probabilities (the expected churners)."""
    ids = np.array([*core.catalogue.ids, ""], dtype=object)
    out_columns = [config.id_column] + OUTPUT_COLUMNS[1:]
    probs = np.empty(scored.rows)  # summed whole at the end, as one array (the same float sum)
    offset, writer = 0, None
    try:
        for frame in stage_batches(scored.stage, config.chunk_size):
            n = len(frame)
            if offset + n > scored.rows:
                raise BatchError(f"row accounting failed: the stage holds more than the "
                                 f"{scored.rows} rows scored")
            probs[offset:offset + n] = frame["churn_probability"].to_numpy(float)
            c, net, cut = chosen.between(offset, offset + n)
            frame["offer_id"] = ids[np.where(c == NO_OFFER, -1, c)]
            frame["offer_expected_net_value"] = net
            frame["offer_churn_reduction"] = cut
            frame["model_name"] = model.name or ""
            frame["model_version"] = model.version or ""
            frame["scored_at"] = scored.scored_at
            frame = frame.rename(columns={"customer_id": config.id_column})[out_columns]
            if suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(target, index=False, mode="w" if offset == 0 else "a",
                             header=offset == 0)
            offset += n
        if offset == 0:
            empty = pd.DataFrame(columns=out_columns)
            if suffix == ".parquet":
                empty.to_parquet(target, index=False)
            else:
                empty.to_csv(target, index=False)
    finally:
        if writer is not None:
            writer.close()
    return offset, float(probs[:offset].sum())


def _summarise(core: ScoringCore, scored: ScoredRows, chosen: Chosen, churners: float) -> None:
    summary, costs = scored.summary, scored.costs
    summary.expected_churners = churners
    summary.offers = {o.id: int((chosen.offer == j).sum())
                      for j, o in enumerate(core.catalogue.offers)}
    summary.spend = float(costs[chosen.offer].sum()) if len(chosen.offer) else 0.0
    net_value = np.zeros(scored.rows)  # every row's, summed as one array (the same float sum)
    net_value[chosen.rows] = chosen.net
    summary.expected_net_value = float(net_value.sum())
    summary.expected_value_saved = summary.expected_net_value + summary.spend


def write_outputs(model: LoadedModel, core: ScoringCore, scored: ScoredRows, chosen: Chosen,
                  out: Path, config: BatchConfig) -> None:
    """Output, quarantine and manifest, written aside and committed (``jobs.batch_commit``);
    ``chosen``: the rows given an offer, with the offer, its net value and churn reduction."""
    with writing_in(out.parent):
        _write_outputs(model, core, scored, chosen, out, config)


def _write_outputs(model: LoadedModel, core: ScoringCore, scored: ScoredRows, chosen: Chosen,
                   out: Path, config: BatchConfig) -> None:
    final_tmp = out.with_name(f".{out.name}.{os.getpid()}.final.tmp")
    q_tmp = out.with_name(f".{out.name}.{os.getpid()}.quarantine.tmp")
    summary = scored.summary
    try:
        rows_out, churners = _write_rows(model, core, scored, chosen, final_tmp,
                                         out.suffix.lower(), config)
        _summarise(core, scored, chosen, churners)
        if summary.rows_in != rows_out + summary.rows_quarantined:
            raise BatchError(f"row accounting failed: {summary.rows_in} in, {rows_out} out, "
                             f"{summary.rows_quarantined} quarantined")
        quarantine = (pd.concat(scored.quarantine, ignore_index=True) if scored.quarantine
                      else pd.DataFrame({config.id_column: pd.Series(dtype=str),
                                         "cutoff": pd.Series(dtype=str),
                                         "reason": pd.Series(dtype=str)}))
        if out.suffix.lower() == ".parquet":
            quarantine.to_parquet(q_tmp, index=False)
        else:
            quarantine.to_csv(q_tmp, index=False)
        manifest = {"output": out.name, "rows_in": summary.rows_in, "rows_out": rows_out,
                    "rows_quarantined": summary.rows_quarantined,
                    "quarantine_reasons": summary.quarantine_reasons,
                    "model_name": model.name, "model_version": model.version,
                    "input_fingerprint": scored.fingerprint,
                    "output_sha256": fingerprint_file(final_tmp),
                    "quarantine_sha256": fingerprint_file(q_tmp),
                    "scored_at": scored.scored_at, "chunk_size": config.chunk_size,
                    "campaign_budget": config.campaign_budget, "summary": summary.as_dict()}
        commit(out, final_tmp, q_tmp, manifest)
    finally:
        if final_tmp.exists():  # not committed: the previous pair is untouched
            final_tmp.unlink()
            q_tmp.unlink(missing_ok=True)
        # else the staged quarantine stays for recover() when the commit broke off half-way


__all__ = ["BatchConfig", "BatchError", "BatchSummary", "ScoredRows", "finish", "clean_stale",
           "companion_paths", "fingerprint_file", "read_committed", "stage_batches", "staged_parts"]

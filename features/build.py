"""Point-in-time feature assembly: features at each cutoff, labels, many cutoffs stacked.

``compute_features`` is a pure function of the events of a set of customers and a cutoff: it gives
the same numbers for a customer whether it runs on the whole base or on one partition of it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.config import FeatureConfig, LabelConfig
from features.contract import ContractError, Problem
from features.crm import CrmData
from features.errors import BadInput
from features.events import DAY_NS, SortedEvents
from features.families import FeatureSink
from features.families.activity import add_activity, choose_vocabulary
from features.families.btyd import BtydFit, add_btyd, fit_btyd
from features.families.engagement import add_engagement, add_proactiveness
from features.families.offer_history import add_offer_history
from features.families.rfm import add_rfm
from features.families.support import add_support
from features.families.voice import add_voice
from features.io import write_atomic
from features.labels import horizon_end, is_observed, population_and_label, population_rule
from features.progress import bar
from features.spec import CATEGORY, NUMBER, FeatureSpec, column_spec, kind_of, specs_from_json, specs_to_json

log = logging.getLogger(__name__)

LABEL = "label"
_NOT_STATIC = {"customer_id", "signup_date", "cancel_date"}
_RESERVED = {"cutoff", LABEL}  # columns every feature set has beside customer_id and the features


@dataclass(frozen=True)
class FeatureSet:
    """Rows of (customer_id, cutoff, features..., label) with the metadata of every feature."""

    frame: pd.DataFrame
    specs: list[FeatureSpec]
    label_config: LabelConfig | None = None
    config: FeatureConfig | None = None  # as built: with the event vocabulary it found
    data_end: pd.Timestamp | None = None  # the end of the data the labels were judged against

    @property
    def feature_names(self) -> list[str]:
        return [s.name for s in self.specs]


class PreparedCrm:
    """A source with each event table sorted once by (customer, time), reused for every cutoff.
    ``codes`` (table -> each event's customer as a position in the customers table, as
    ``validate`` finds them) spares finding them again."""

    def __init__(self, crm: CrmData, codes: dict[str, np.ndarray] | None = None):
        self.customers = crm.customers.reset_index(drop=True)
        self.index = pd.Index(self.customers["customer_id"])
        self.data_end = crm.data_end
        idx, codes = self.index, codes or {}

        def sort(frame: pd.DataFrame, name: str, time_col: str, columns: list[str]):
            return SortedEvents.from_frame(frame, idx, time_col, columns, codes.get(name))

        self.orders = sort(crm.orders, "orders", "order_ts", ["amount", "discount"])
        self.tickets = None if crm.tickets is None else sort(
            crm.tickets, "tickets", "opened_ts",
            ["closed_ts", "is_complaint", "escalated", "reopened", "resolved_first_contact",
             "channel"])
        self.answers = self.sent = None
        if crm.surveys is not None:
            self.answers = sort(crm.surveys, "surveys", "response_ts", ["kind", "score"])
            if "sent_ts" in crm.surveys.columns:
                self.sent = sort(crm.surveys, "surveys", "sent_ts", ["response_ts"])
        self.engagement = None if crm.engagement is None else sort(
            crm.engagement, "engagement", "event_ts", ["event_type", "value"])
        self.offers = None if crm.offers is None else sort(
            crm.offers, "offers", "sent_ts", ["treated", "accepted_ts"])


def compute_features(prepared: PreparedCrm, cutoff: pd.Timestamp,
                     config: FeatureConfig) -> FeatureSink:
    """Every feature of every customer at ``cutoff``, from events strictly before it."""
    cutoff = pd.Timestamp(cutoff)
    sink = FeatureSink()
    signup = prepared.customers["signup_date"].to_numpy("datetime64[ns]").view(np.int64)
    tenure = (np.int64(cutoff.value) - signup) / DAY_NS
    orders = prepared.orders.before(cutoff)
    add_rfm(sink, orders, tenure, config)
    if config.btyd is not None:
        fit = (config.btyd_fits or {}).get(cutoff.isoformat())
        add_btyd(sink, orders, tenure, config.horizon_days, config.btyd,
                 None if fit is None else BtydFit.from_dict(fit))
    tickets = prepared.tickets.before(cutoff) if prepared.tickets is not None else None
    if tickets is not None:
        add_support(sink, tickets, config)
    if prepared.answers is not None:
        sent = prepared.sent.before(cutoff) if prepared.sent is not None else None
        add_voice(sink, prepared.answers.before(cutoff), sent, config)
    events = prepared.engagement.before(cutoff) if prepared.engagement is not None else None
    if events is not None:
        add_engagement(sink, events, config)
        add_activity(sink, events, config)
    offers = prepared.offers.before(cutoff) if prepared.offers is not None else None
    if offers is not None:
        add_offer_history(sink, offers, config)
    if events is not None or tickets is not None:
        add_proactiveness(sink, len(prepared.index), events, tickets, offers, config)
    _add_static(sink, prepared.customers)
    return sink


def _add_static(sink: FeatureSink, customers: pd.DataFrame) -> None:
    for col in customers.columns:
        if col in _NOT_STATIC:
            continue
        values = customers[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            log.info("customers.%s is a date; static dates are not used as features", col)
            continue
        if col in sink.values:  # the families' names come first: a clash is the data's
            raise BadInput(f"customers.{col}: a customer attribute with the name of a built "
                           "feature (attributes become features under their own names); rename "
                           "the column")
        if col in _RESERVED:  # the feature set's own columns: `label` would be overwritten by
            # the target and then trained on as a feature
            raise BadInput(f"customers.{col}: a customer attribute with the name of a column the "
                           f"feature set adds ({', '.join(sorted(_RESERVED))}); rename the column")
        spec = column_spec(col, kind_of(values), "static", f"customer attribute {col}")
        array = (values.astype("float64").to_numpy(np.float64, na_value=np.nan) if spec.kind == NUMBER
                 else values.astype("str").to_numpy(object))
        sink.add(spec, array)


def build_feature_set(crm: CrmData | PreparedCrm, cutoffs: list[pd.Timestamp], config: FeatureConfig,
                      label_config: LabelConfig, population_only: bool = True,
                      data_end: pd.Timestamp | None = None) -> FeatureSet:
    """Features and labels at each cutoff, stacked (one row per customer in the population).

    ``data_end`` (the end of the whole source: its as-of date when declared, else its latest
    timestamp) decides whether a label is known yet: only a cutoff whose whole horizon ends by it
    is labelled. A partition of customers passes the source's, so that every partition agrees.
    """
    if not cutoffs:
        raise BadInput("at least one cutoff is needed")
    prepared = crm if isinstance(crm, PreparedCrm) else PreparedCrm(crm)
    config = resolve_config(prepared, cutoffs, config, label_config.horizon_days)
    if data_end is not None:
        prepared.data_end = pd.Timestamp(data_end)
    frames, specs = [], None
    for cutoff in bar(sorted(pd.Timestamp(c) for c in cutoffs), desc="building features",
                      unit="cutoff"):
        sink = compute_features(prepared, cutoff, config)
        population, label = population_and_label(prepared.customers, prepared.orders, cutoff,
                                                  label_config, prepared.data_end)
        keep = population if population_only else np.ones(len(population), dtype=bool)
        rows = np.flatnonzero(keep)  # found once, taken from every column
        frame = pd.DataFrame({"customer_id": prepared.customers["customer_id"].to_numpy()[rows],
                              **{k: v[rows] for k, v in sink.values.items()}})
        frame.insert(1, "cutoff", cutoff)  # one copy of the features, not two
        frame[LABEL] = label[keep]
        specs, sink = sink.specs, None
        frames.append(frame)
        if not is_observed(cutoff, label_config, prepared.data_end):
            log.info("cutoff %s: the horizon ends %s, after the data's end %s: no labels",
                     cutoff.date(), horizon_end(cutoff, label_config), prepared.data_end)
        labelled = np.isfinite(label[keep])
        log.info("cutoff %s: %d customers in the population, churn rate %s", cutoff.date(),
                 keep.sum(), f"{label[keep][labelled].mean():.3f}" if labelled.any() else "unknown")
    frame = pd.concat(frames, ignore_index=True)
    for spec in specs:
        if spec.kind == CATEGORY:
            frame[spec.name] = frame[spec.name].astype("str")
    return FeatureSet(frame, specs, label_config, config, pd.Timestamp(prepared.data_end))


def require_rows(fs: FeatureSet, cutoffs: list) -> FeatureSet:
    """``fs``, or a :class:`ContractError` when it has no rows: no customer is in the population
    at any cutoff, so there is nothing to train or score (never an empty file with success)."""
    if len(fs.frame):
        return fs
    labels = fs.label_config or LabelConfig()
    dates = ", ".join(str(pd.Timestamp(c).date()) for c in sorted(cutoffs))
    raise ContractError([Problem(
        "customers", None, f"no customer is in the population at any cutoff ({dates}): the "
        f"{labels.definition} population is customers who {population_rule(labels)}; nothing "
        "was written")])


def resolve_config(crm: CrmData | PreparedCrm, cutoffs: list[pd.Timestamp],
                   config: FeatureConfig, horizon_days: int | None = None) -> FeatureConfig:
    """The settings with what is found in the data fixed once for every cutoff and every
    partition of customers: the event vocabulary (from the events before the latest cutoff) and
    the BTYD models fitted on all customers at each cutoff (from the orders before it)."""
    prepared = crm if isinstance(crm, PreparedCrm) else PreparedCrm(crm)
    update: dict = {}
    if horizon_days is not None and horizon_days != config.horizon_days:
        update["horizon_days"] = horizon_days
    if config.event_types is None and prepared.engagement is not None:
        latest = max(pd.Timestamp(c) for c in cutoffs)
        update["event_types"], update["valued_event_types"] = choose_vocabulary(
            prepared.engagement.before(latest), config)
    if config.btyd is not None:
        fits = dict(config.btyd_fits or {})
        for cutoff in sorted(pd.Timestamp(c) for c in cutoffs):
            if cutoff.isoformat() not in fits:
                fits[cutoff.isoformat()] = fit_btyd(prepared.orders.before(cutoff),
                                                    config.btyd).as_dict()
        if fits != (config.btyd_fits or {}):
            update["btyd_fits"] = fits
    return config.model_copy(update=update) if update else config


def write_feature_set(fs: FeatureSet, path: str | Path) -> Path:
    """Parquet with the feature metadata in the file's key-value metadata; written atomically."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise BadInput(f"feature sets are written as .parquet, got {path.name}")
    table = feature_table(fs)
    return write_atomic(path, lambda p: pq.write_table(table, p))


def feature_table(fs: FeatureSet) -> pa.Table:
    """The rows as Arrow, with the feature metadata in the schema's key-value metadata."""
    table = pa.Table.from_pandas(fs.frame, preserve_index=False)
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          **feature_metadata(fs)})


def feature_metadata(fs: FeatureSet) -> dict[bytes, bytes]:
    """The feature set's key-value metadata: the features, the labels, the settings, the data end."""
    meta = {b"churn.features": specs_to_json(fs.specs).encode()}
    if fs.label_config is not None:
        meta[b"churn.labels"] = fs.label_config.model_dump_json().encode()
    if fs.config is not None:
        meta[b"churn.feature_config"] = fs.config.model_dump_json().encode()
    if fs.data_end is not None and pd.notna(fs.data_end):
        meta[b"churn.data_end"] = pd.Timestamp(fs.data_end).isoformat().encode()
    return meta


def read_feature_set(path: str | Path) -> FeatureSet:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if b"churn.features" not in meta:
        raise BadInput(f"{path} is not a feature set written by `churn features build` "
                         "(no feature metadata)")
    specs = specs_from_json(meta[b"churn.features"].decode())
    labels = (LabelConfig(**json.loads(meta[b"churn.labels"])) if b"churn.labels" in meta
              else None)
    config = (FeatureConfig(**json.loads(meta[b"churn.feature_config"]))
              if b"churn.feature_config" in meta else None)
    data_end = (pd.Timestamp(meta[b"churn.data_end"].decode()) if b"churn.data_end" in meta
                else None)
    return FeatureSet(table.to_pandas(), specs, labels, config, data_end)

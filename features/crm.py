"""CrmData: the validated tables of one source, and the customer subsets features run on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.contract import TABLES


@dataclass(frozen=True)
class CrmData:
    """The contract's tables, typed. Optional tables are ``None`` when the source lacks them."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    tickets: pd.DataFrame | None = None
    surveys: pd.DataFrame | None = None
    engagement: pd.DataFrame | None = None
    offers: pd.DataFrame | None = None

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame]) -> CrmData:
        return cls(**{f.name: tables.get(f.name) for f in fields(cls)})

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @property
    def data_end(self) -> pd.Timestamp:
        """The latest timestamp seen in any event table: labels need data up to t + horizon
        (the latest signup date when no table has a timestamp)."""
        latest = self.latest_event
        return latest if latest is not None else pd.Timestamp(self.customers["signup_date"].max())

    @property
    def latest_event(self) -> pd.Timestamp | None:
        """The latest timestamp in any table (None when there is none)."""
        latest = []
        for name, frame in self.tables().items():
            for col in TABLES[name].columns:
                if col.kind == "timestamp" and col.name in frame.columns and len(frame):
                    value = frame[col.name].max()
                    if pd.notna(value):
                        latest.append(value)
        return max(latest) if latest else None

    def subset(self, customer_ids) -> CrmData:
        """The same source restricted to some customers (a partition for a distributed engine)."""
        ids = pd.Index(customer_ids)
        return CrmData(**{
            name: frame[frame["customer_id"].isin(ids)].reset_index(drop=True)
            for name, frame in self.tables().items()
        })

    def fingerprint(self) -> str:
        """A content hash of every table (order of rows included), for run tracking."""
        digest = hashlib.sha256()
        self.update_digest(digest)
        return digest.hexdigest()[:16]

    def update_digest(self, digest) -> None:
        """Feed every table (name, columns, row hashes in order) to a hashlib digest."""
        for name, frame in sorted(self.tables().items()):
            digest.update(name.encode())
            digest.update(",".join(map(str, frame.columns)).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
                          .tobytes())

"""Point in time: nothing at or after the cutoff may move a feature; the same change before it does.

Hypothesis draws random edits of events at or after the cutoff (delete rows, add rows, change
values, move later timestamps to other later times or to nothing) on a small generated CRM and
checks that not a single feature value changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import PreparedCrm, compute_features
from features.config import FeatureConfig
from features.contract import TABLES, validate
from features.crm import CrmData
from features.sample import SampleSpec, generate
from features.sample.write import sample_tables

CUTOFF = pd.Timestamp("2024-10-01")
EVENT_TABLES = ("orders", "tickets", "surveys", "engagement", "offers")


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    raw = sample_tables(generate(SampleSpec(customers=400, months=12, seed=3)))
    tables = validate({k: v.to_pandas() for k, v in raw.items() if not k.startswith("_")})
    # rows that straddle the cutoff (opened before, closed/answered/accepted after) are where
    # leaks hide: make sure there are plenty
    rng = np.random.default_rng(5)
    for name, start, end in (("tickets", "opened_ts", "closed_ts"),
                             ("surveys", "sent_ts", "response_ts"),
                             ("offers", "sent_ts", "accepted_ts")):
        frame = tables[name]
        recent = frame.index[(frame[start] < CUTOFF) & (frame[start] >= CUTOFF - pd.Timedelta(
            days=120))]
        pick = rng.choice(recent, size=len(recent) // 2, replace=False)
        frame.loc[pick, end] = CUTOFF + pd.to_timedelta(rng.integers(0, 60 * 86400, len(pick)),
                                                        unit="s")
        if name == "surveys":
            frame.loc[pick, "score"] = frame.loc[pick, "score"].fillna(3.0)
        if name == "offers":
            frame.loc[pick, "treated"] = True
        assert len(pick) >= 5, f"too few {name} rows straddle the cutoff"
    return tables


def _features(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    crm = CrmData.from_tables(validate(tables))
    sink = compute_features(PreparedCrm(crm), CUTOFF, FeatureConfig())
    return pd.DataFrame(sink.values, index=crm.customers["customer_id"])


def _time_columns(name: str) -> list[str]:
    return [c.name for c in TABLES[name].columns if c.kind == "timestamp"]


def _after(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Rows that carry nothing before the cutoff: every timestamp at/after it or empty."""
    ok = np.ones(len(frame), dtype=bool)
    for col in _time_columns(name):
        if col in frame.columns:
            ok &= (frame[col].isna() | (frame[col] >= CUTOFF)).to_numpy(bool)
    return ok


def _edit_after(tables, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    out = {k: v.copy() for k, v in tables.items()}
    for name in EVENT_TABLES:
        frame = out[name]
        after = np.flatnonzero(_after(frame, name))
        # 1. delete some rows that lie wholly after the cutoff
        drop = rng.choice(after, size=min(len(after), rng.integers(0, 30)), replace=False)
        # 2. change values of others
        change = np.setdiff1d(rng.choice(after, size=min(len(after), 30), replace=False), drop)
        for col in frame.columns:
            if col == "customer_id" or col in _time_columns(name):
                continue
            if pd.api.types.is_float_dtype(frame[col]):  # 1-5 fits every survey scale too
                frame.loc[frame.index[change], col] = rng.integers(1, 6, len(change)).astype(float)
            elif pd.api.types.is_bool_dtype(frame[col]):
                frame.loc[frame.index[change], col] = rng.random(len(change)) < 0.5
        # 3. move timestamps that are at/after the cutoff to other later times, or to nothing
        for col in _time_columns(name):
            late = np.flatnonzero((frame[col] >= CUTOFF).fillna(False).to_numpy(bool))
            pick = rng.choice(late, size=min(len(late), 40), replace=False)
            shift = pd.to_timedelta(rng.integers(0, 200 * 86_400, len(pick)), unit="s")
            frame.loc[frame.index[pick], col] = CUTOFF + shift
            if col in ("closed_ts", "accepted_ts", "response_ts"):
                gone = pick[:8]
                if col == "response_ts":  # a survey needs one of its two times
                    gone = gone[frame["sent_ts"].iloc[gone].notna().to_numpy(bool)]
                frame.loc[frame.index[gone], col] = pd.NaT
        # 4. add copies of random rows, moved to the cutoff or after it (exactly t included)
        extra = frame.sample(n=20, replace=True, random_state=int(rng.integers(1 << 30))).copy()
        for col in _time_columns(name):
            if col in extra.columns:
                offset = pd.to_timedelta(rng.integers(0, 90 * 86_400, len(extra)), unit="s")
                offset = offset.where(rng.random(len(extra)) < 0.7, pd.Timedelta(0))
                extra[col] = CUTOFF + offset
        out[name] = _keep_valid(pd.concat([frame.drop(frame.index[drop]), extra],
                                          ignore_index=True))
    return out


def _keep_valid(frame: pd.DataFrame) -> pd.DataFrame:
    """Mend what the random edits break in the contract (the edits stay after the cutoff)."""
    if "order_id" in frame.columns:
        frame["order_id"] = [f"o{i}" for i in range(len(frame))]
    if "closed_ts" in frame.columns:
        early = frame["closed_ts"] < frame["opened_ts"]
        frame.loc[early, "closed_ts"] = frame.loc[early, "opened_ts"] + pd.Timedelta(hours=5)
    if "score" in frame.columns:
        frame.loc[frame["response_ts"].notna() & frame["score"].isna(), "score"] = 3.0
    return frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_changes_at_or_after_the_cutoff_never_move_a_feature(tables, seed):
    before = _features(tables)
    after = _features(_edit_after(tables, np.random.default_rng(seed)))
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def _latest_before(frame, col, extra=None):
    ok = (frame[col] < CUTOFF).fillna(False).to_numpy(bool)
    if extra is not None:
        ok = ok & extra
    return frame.index[ok][frame.loc[ok, col].argmax()]


BEFORE_EDITS = [
    # (table, time column, row filter, features that must move)
    ("orders", "order_ts", None, ["recency_days", "orders_lifetime"]),
    ("tickets", "opened_ts", None, ["tickets_365d", "days_since_last_ticket"]),
    ("surveys", "response_ts", lambda f: f["kind"].eq("nps").to_numpy(bool), ["nps_last"]),
    ("engagement", "event_ts", lambda f: f["event_type"].eq("web_session").to_numpy(bool),
     ["web_sessions_30d"]),
    ("offers", "sent_ts", lambda f: f["treated"].to_numpy(bool), ["offers_received_365d"]),
]


@pytest.mark.parametrize("name,col,row_filter,moved", BEFORE_EDITS, ids=[e[0] for e in BEFORE_EDITS])
def test_the_same_change_before_the_cutoff_does_move_features(tables, name, col, row_filter,
                                                              moved):
    frame = tables[name]
    extra = row_filter(frame) if row_filter else None
    row = _latest_before(frame, col, extra=extra)
    customer = frame.loc[row, "customer_id"]
    edited = dict(tables)
    edited[name] = frame.drop(index=row)
    before, after = _features(tables).loc[customer], _features(edited).loc[customer]
    for feature in moved:
        assert not np.isclose(before[feature], after[feature], equal_nan=True), \
            f"deleting the latest {name} row of {customer} before the cutoff left {feature} at " \
            f"{before[feature]}"

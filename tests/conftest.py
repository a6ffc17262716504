"""Shared fixtures: tiny hand-built CRM tables and one small generated sample per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three customers, a handful of events each; values chosen to be checked by hand."""
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C"],
        "signup_date": pd.to_datetime(["2023-01-01", "2023-06-01", "2024-03-01"]),
        "cancel_date": pd.to_datetime([None, "2024-05-10", None]),
        "has_contract": [False, True, True],
        "plan": ["basic", "premium", "basic"],
    })
    orders = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B", "C"],
        "order_ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-02", "2024-02-15",
                                    "2024-03-20", "2024-03-05"]),
        "amount": [10.0, 20.0, 30.0, 100.0, 50.0, 5.0],
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
    })
    tickets = pd.DataFrame({
        "customer_id": ["A", "A", "B"],
        "opened_ts": pd.to_datetime(["2024-02-10", "2024-03-25", "2024-03-01"]),
        "closed_ts": pd.to_datetime(["2024-02-14", "2024-04-10", "2024-03-01T06:00"], format="ISO8601"),
        "channel": ["phone", "email", "chat"],
        "is_complaint": [True, True, False],
        "escalated": [True, False, False],
        "reopened": [False, False, False],
        "resolved_first_contact": [False, False, True],
    })
    surveys = pd.DataFrame({
        "customer_id": ["A", "A", "B", "C"],
        "sent_ts": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-03-01", "2024-03-10"]),
        "response_ts": pd.to_datetime(["2024-01-06", "2024-03-03", None, None]),
        "kind": ["nps", "nps", "nps", "csat"],
        "score": [9.0, 4.0, None, None],
    })
    engagement = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B", "B"],
        "event_ts": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-10", "2024-03-05",
                                    "2024-03-06"]),
        "event_type": ["email_sent", "email_open", "web_session", "email_sent", "app_login"],
        "value": [None, None, 4.0, None, None],
    })
    offers = pd.DataFrame({
        "customer_id": ["A", "B"],
        "sent_ts": pd.to_datetime(["2024-02-20", "2024-02-20"]),
        "offer_id": ["discount_10", "service_call"],
        "treated": [True, False],
        "accepted_ts": pd.to_datetime(["2024-02-22", None]),
        "cost": [10.0, 0.0],
    })
    return {"customers": customers, "orders": orders, "tickets": tickets, "surveys": surveys,
            "engagement": engagement, "offers": offers}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def tiny() -> dict[str, pd.DataFrame]:
    return tiny_tables()


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A small generated CRM (3,000 customers, 24 months), shared by the whole run."""
    from features.sample import SampleSpec, generate, write_sample

    out = tmp_path_factory.mktemp("sample") / "crm"
    write_sample(generate(SampleSpec(customers=3_000, months=24, seed=11)), out)
    return out


@pytest.fixture(scope="session")
def sample_crm(sample_dir):
    from features.io import load_crm

    return load_crm(sample_dir)

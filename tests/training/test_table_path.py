"""`churn train --table` on a customer table a data scientist brings, and `churn score` on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()


def _table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    charges = rng.uniform(20, 120, n).round(2)
    contract = rng.choice(["month-to-month", "one year", "two year"], n, p=[0.5, 0.3, 0.2])
    paperless = rng.random(n) < 0.6
    logit = -1.0 - 0.04 * tenure + 0.015 * charges + 1.2 * (contract == "month-to-month") \
        + 0.4 * paperless
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({
        "cid": [f"K{i:05d}" for i in range(n)],
        "tenure": tenure,
        "monthly_charges": charges,
        "contract": pd.Series(contract, dtype="category"),
        "payment": pd.Series(rng.choice(["card", "bank", "check"], n), dtype="str"),
        "paperless": paperless,
        "country": "NL",  # constant: not a feature
        "churned": np.where(churned, "Yes", "No"),
    })
    return frame


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_train_and_score_a_table_with_mixed_types(local_tracking):
    tmp = local_tracking
    _table().to_parquet(tmp / "customers.parquet", index=False)
    run = _invoke("train", "--table", tmp / "customers.parquet", "--id", "cid", "--label",
                  "churned", "--experiment", "table-test", "--model-name", "table_churn", "--json")
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(summary) == {"run_id", "model_uri", "model_version", "metrics", "selection"}
    assert summary["selection"]["model_family"] in {"lightgbm", "linear", "blend"}, summary
    assert summary["model_uri"] == "models:/table_churn/1"
    assert summary["metrics"]["roc_auc"] > 0.7, summary["metrics"]

    new = _table(n=300, seed=1).drop(columns=["churned"])
    new["contract"] = new["contract"].astype("object")
    new.loc[:9, "contract"] = "three year"  # a category never seen in training
    new["payment"] = new["payment"].astype("object")
    new.to_csv(tmp / "new.csv", index=False)
    scored_run = _invoke("score", "--model", summary["model_uri"], "--table", tmp / "new.csv",
                         "--id", "cid", "--out", tmp / "scores.parquet")
    assert scored_run.exit_code == 0, scored_run.output
    scores = pd.read_parquet(tmp / "scores.parquet")
    assert list(scores["cid"]) == list(new["cid"])
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["churn_probability"].nunique() > 20


def test_the_logged_model_knows_which_columns_are_features(local_tracking):
    from scoring.model_store import load_scorer

    tmp = local_tracking
    _table().to_parquet(tmp / "t.parquet", index=False)
    run = _invoke("train", "--table", tmp / "t.parquet", "--id", "cid", "--label", "churned",
                  "--json")
    assert run.exit_code == 0, run.output
    scorer = load_scorer("models:/churn@challenger").scorer
    assert "cid" not in scorer.features and "churned" not in scorer.features
    assert "country" not in scorer.features, "a constant column became a feature"
    assert dict(zip(scorer.features, scorer.kinds, strict=True)) == {
        "tenure": "number", "monthly_charges": "number", "contract": "category",
        "payment": "category", "paperless": "number"}


def _bad(frame_fn):
    return frame_fn(_table(300))


BAD_TABLES = [
    ("missing id column", lambda f: f.drop(columns=["cid"]), ["id column 'cid'", "not in"]),
    ("missing label column", lambda f: f.drop(columns=["churned"]),
     ["label column 'churned'", "not in"]),
    ("label not binary", lambda f: f.assign(churned=np.where(f.index % 3 == 0, "maybe", "No")),
     ["not binary", "maybe"]),
    ("empty file", lambda f: f.head(0), ["no rows"]),
    ("copy of the label", lambda f: f.assign(churn_flag=(f["churned"] == "Yes").astype(int)),
     ["churn_flag", "give the label", "away"]),
    ("duplicated ids", lambda f: f.assign(cid="K1"), ["duplicated ids"]),
]


@pytest.mark.parametrize("case,change,words", BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_bad_tables_give_a_clear_error_and_register_nothing(local_tracking, case, change, words):
    tmp = local_tracking
    change(_table(300)).to_csv(tmp / "bad.csv", index=False)
    run = _invoke("train", "--table", tmp / "bad.csv", "--id", "cid", "--label", "churned")
    assert run.exit_code == 2, f"{case}: {run.output}"
    for word in words:
        assert word in run.output, f"{case}: {word!r} not in {run.output!r}"
    assert not (tmp / "mlflow.db").exists(), f"{case}: a run was started"


def test_scoring_a_table_without_the_features_writes_nothing(local_tracking):
    tmp = local_tracking
    _table().to_parquet(tmp / "t.parquet", index=False)
    assert _invoke("train", "--table", tmp / "t.parquet", "--id", "cid", "--label",
                   "churned").exit_code == 0
    _table(50).drop(columns=["tenure", "churned"]).to_parquet(tmp / "new.parquet", index=False)
    run = _invoke("score", "--model", "models:/churn@challenger", "--table", tmp / "new.parquet",
                  "--id", "cid", "--out", tmp / "scores.csv")
    assert run.exit_code == 2, run.output
    assert "tenure" in run.output and "missing" in run.output
    assert not (tmp / "scores.csv").exists()


def test_an_unknown_model_is_a_clear_error(local_tracking):
    tmp = local_tracking
    _table(50).to_parquet(tmp / "t.parquet", index=False)
    run = _invoke("score", "--model", "models:/nothing@champion", "--table", tmp / "t.parquet",
                  "--id", "cid", "--out", tmp / "s.csv")
    assert run.exit_code == 2 and "cannot load model" in run.output, run.output

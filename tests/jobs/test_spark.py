"""Spark and the local engine give the same numbers on the same data (real local Spark)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.contract import ContractError

pytestmark = pytest.mark.slow
CUTOFFS = [pd.Timestamp("2025-04-01"), pd.Timestamp("2025-07-01")]
PART_CUTOFFS = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]


@pytest.fixture(scope="module")
def spark():
    from jobs.spark_features import spark_session

    return spark_session("local[2]")


def test_spark_features_equal_local_features(spark, sample_dir, sample_crm):
    from jobs.spark_features import spark_feature_set

    remote = spark_feature_set(sample_dir, CUTOFFS, FeatureConfig(), LabelConfig(),
                               spark="local[2]")
    local = build_feature_set(sample_crm, CUTOFFS, FeatureConfig(), LabelConfig())
    a = remote.frame.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    b = local.frame.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    assert list(a["customer_id"]) == list(b["customer_id"]) and len(a) > 1000
    assert remote.specs == local.specs
    for spec in local.specs + [type(local.specs[0])("label", "", None, "", "", "{value}")]:
        col = spec.name
        if spec.kind == "category":
            assert (a[col].astype(str) == b[col].astype(str)).all(), col
        else:
            x, y = a[col].to_numpy(float), b[col].to_numpy(float)
            assert (np.isnan(x) == np.isnan(y)).all(), col
            assert np.allclose(x, y, rtol=0, atol=1e-9, equal_nan=True), col


def test_spark_features_with_an_as_of_date_equal_local_features(spark, sample_dir, sample_crm):
    """A declared as-of date is the data's end for the labels on both engines: a cutoff whose
    horizon ends after the last event but before the as-of date is labelled, the same way."""
    from features.io import load_crm
    from jobs.spark_features import spark_feature_set

    as_of = (sample_crm.data_end + pd.Timedelta(days=2)).normalize()
    late = (as_of - pd.Timedelta(days=LabelConfig().horizon_days)).normalize()
    assert late + pd.Timedelta(days=LabelConfig().horizon_days) > sample_crm.data_end
    cutoffs = [CUTOFFS[-1], late]
    remote = spark_feature_set(sample_dir, cutoffs, FeatureConfig(), LabelConfig(),
                               spark="local[2]", as_of=as_of)
    local = build_feature_set(load_crm(sample_dir, as_of=as_of), cutoffs, FeatureConfig(),
                              LabelConfig(), data_end=as_of)
    assert remote.data_end == local.data_end == as_of
    a = remote.frame.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    b = local.frame.sort_values(["cutoff", "customer_id"]).reset_index(drop=True)
    assert list(a["customer_id"]) == list(b["customer_id"])
    labels = a.loc[a["cutoff"] == late, "label"]
    assert labels.notna().all() and len(labels) > 100  # labelled only thanks to the as-of date
    assert np.array_equal(a["label"].to_numpy(float), b["label"].to_numpy(float), equal_nan=True)


def test_spark_scoring_equals_local_scoring(spark, served, sample_dir, monkeypatch, tmp_path):
    from churn.settings import Settings
    from jobs.batch import BatchConfig
    from jobs.runner import run_scoring_job

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
    config = BatchConfig(campaign_budget=400.0, chunk_size=700)
    outs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.parquet"
        summary, _ = run_scoring_job("models:/churn@champion", out, config, Settings(),
                                     data=sample_dir, cutoff=pd.Timestamp("2025-12-01"),
                                     engine=engine, spark="local[2]", track=False)
        outs[engine] = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
        assert summary.rows_in == summary.rows_scored + summary.rows_quarantined
    a, b = outs["local"], outs["spark"]
    assert list(a["customer_id"]) == list(b["customer_id"]) and len(a) > 500
    assert np.allclose(a["churn_probability"], b["churn_probability"], rtol=0, atol=1e-9)
    assert (a["reasons"] == b["reasons"]).all()
    assert (a["risk_band"] == b["risk_band"]).all()
    assert (a["offer_id"] == b["offer_id"]).all()
    assert np.allclose(a["offer_expected_net_value"], b["offer_expected_net_value"], atol=1e-9)


def test_spark_keeps_each_rows_cutoff_and_quarantines_like_the_local_engine(spark, served,
                                                                            feature_set,
                                                                            monkeypatch,
                                                                            tmp_path):
    """A multi-cutoff feature file with a duplicated key and values the model's specification
    forbids: both engines, at two chunk sizes, write the same rows with each row's own cutoff
    and quarantine the same rows for the same reasons."""
    from churn.settings import Settings
    from jobs.batch import BatchConfig
    from jobs.runner import run_scoring_job

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["MLFLOW_TRACKING_URI"])
    table = (feature_set.frame.drop(columns=["label"]).sample(n=4000, random_state=5)
             .reset_index(drop=True))
    table = pd.concat([table, table.iloc[[7]]], ignore_index=True)  # a duplicated key
    table["recency_days"] = table["recency_days"].astype(float)
    table.loc[20, "recency_days"] = -4.0
    table.loc[21, "email_open_rate_90d"] = 3.0
    table.to_parquet(tmp_path / "features.parquet", index=False)
    outs, quarantines = {}, {}
    for engine, size in (("local", 300), ("local", 50_000), ("spark", 300)):
        out = tmp_path / f"{engine}{size}.parquet"
        summary, _ = run_scoring_job("models:/churn@champion", out, BatchConfig(chunk_size=size),
                                     Settings(), features=tmp_path / "features.parquet",
                                     engine=engine, spark="local[2]", track=False)
        assert summary.rows_quarantined == 4 and summary.rows_in == len(table)
        outs[engine, size] = (pd.read_parquet(out).drop(columns=["scored_at"])
                              .sort_values(["customer_id", "cutoff"]).reset_index(drop=True))
        quarantines[engine, size] = (pd.read_parquet(tmp_path / f"{engine}{size}.quarantine.parquet")
                                     .sort_values(["customer_id", "cutoff", "reason"])
                                     .reset_index(drop=True))
    want = table.drop(index=[7, len(table) - 1, 20, 21])
    want_keys = sorted(zip(want["customer_id"], want["cutoff"].dt.strftime("%Y-%m-%d"),
                           strict=True))
    for key, got in outs.items():
        assert sorted(zip(got["customer_id"], got["cutoff"], strict=True)) == want_keys, key
        pd.testing.assert_frame_equal(got.drop(columns=["churn_probability",
                                                        "offer_expected_net_value",
                                                        "offer_churn_reduction", "reasons"]),
                                      outs["local", 300].drop(columns=[
                                          "churn_probability", "offer_expected_net_value",
                                          "offer_churn_reduction", "reasons"]),
                                      check_dtype=False)
        assert np.allclose(got["churn_probability"], outs["local", 300]["churn_probability"],
                           rtol=0, atol=1e-9), key
        pd.testing.assert_frame_equal(quarantines[key], quarantines["local", 300],
                                      check_dtype=False)
    assert sorted(quarantines["local", 300]["reason"]) == [
        "duplicate key", "duplicate key", "email_open_rate_90d above the allowed maximum 1",
        "recency_days below the allowed minimum 0"]


def _cli_build(engine: str, source, out):
    from typer.testing import CliRunner

    from churn.cli import app

    return CliRunner().invoke(app, [
        "features", "build", "--engine", engine, "--spark-master", "local[2]", "--data",
        str(source), "--out", str(out),
        *[x for c in PART_CUTOFFS for x in ("--cutoff", str(c.date()))]])


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A small source in the partitioned layout (3 parts) and the local engine's build of it."""
    from features.sample import SampleSpec, write_partitioned

    root = tmp_path_factory.mktemp("parts")
    write_partitioned(SampleSpec(customers=1_500, months=15, seed=5, block=500), root / "crm")
    assert _cli_build("local", root / "crm", root / "local.parquet").exit_code == 0
    return root


def test_spark_build_on_the_partitions_writes_the_local_engines_file(spark, parts, tmp_path):
    """``churn features build --engine spark`` on a partitioned source: each part's passes on
    the executors, the rows appended in the parts' order; the same bytes as the local engine's
    file, and no spool or staging left beside it."""
    out = tmp_path / "out" / "features.parquet"
    run = _cli_build("spark", parts / "crm", out)
    assert run.exit_code == 0, run.output
    assert "2 cutoffs" in run.output, run.output
    assert out.read_bytes() == (parts / "local.parquet").read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["features.parquet"]


def test_a_breach_in_one_part_gives_the_local_engines_error_and_writes_nothing(spark, parts,
                                                                              tmp_path):
    from features.stream import build_to_parquet
    from jobs.spark_build import spark_build_to_parquet

    crm = tmp_path / "crm"
    shutil.copytree(parts / "crm", crm)
    path = crm / "orders" / "part-00001.parquet"
    frame = pd.read_parquet(path)
    frame.loc[1, "amount"] = -5.0  # a check the glance pass does not make: the build pass does
    frame.to_parquet(path, index=False)
    errors = {}
    for engine in ("local", "spark"):
        out = tmp_path / engine / "features.parquet"
        with pytest.raises(ContractError) as err:
            if engine == "local":
                build_to_parquet(crm, PART_CUTOFFS, FeatureConfig(), LabelConfig(), out,
                                 workers=1)
            else:
                spark_build_to_parquet(crm, PART_CUTOFFS, FeatureConfig(), LabelConfig(), out,
                                       spark="local[2]")
        errors[engine] = str(err.value)
        assert not out.parent.exists() or list(out.parent.iterdir()) == [], engine
    for engine in ("local", "spark"):  # again: a task cancelled late cannot write there either
        folder = tmp_path / engine
        assert not folder.exists() or list(folder.iterdir()) == [], engine
    assert errors["spark"] == errors["local"]
    assert "orders.amount" in errors["spark"] and "part-00001" in errors["spark"], errors


def test_spark_buckets_on_a_partitioned_source_is_said_to_be_unused(spark, parts, tmp_path,
                                                                   caplog):
    """``--spark-buckets`` does not apply when the source's parts are the tasks: the build says
    so (a warning naming the parts) and writes the local engine's file."""
    from typer.testing import CliRunner

    from churn.cli import app

    out = tmp_path / "out" / "features.parquet"
    with caplog.at_level("WARNING", logger="jobs.spark_build"):
        run = CliRunner().invoke(app, [
            "features", "build", "--engine", "spark", "--spark-master", "local[2]",
            "--spark-buckets", "4", "--data", str(parts / "crm"), "--out", str(out),
            *[x for c in PART_CUTOFFS for x in ("--cutoff", str(c.date()))]])
    assert run.exit_code == 0, run.output
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.spark_build"]
    assert any("--spark-buckets 4 is not used" in m and "3 parts" in m for m in said), said
    assert out.read_bytes() == (parts / "local.parquet").read_bytes()

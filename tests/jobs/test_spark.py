"""Spark and the local engine give the same numbers on the same data (real local Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig

pytestmark = pytest.mark.slow
CUTOFFS = [pd.Timestamp("2025-04-01"), pd.Timestamp("2025-07-01")]


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

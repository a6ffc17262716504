"""Training never uses a label from a horizon the data does not cover, nor an empty feature set,
and fails in one line, fast, when the MLflow tracking server is down (issue #17)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from features.build import FeatureSet
from features.config import LabelConfig
from training.config import TrainConfig
from training.dataset import HOLDOUT, TrainingInputError, from_feature_set


def _with_end(fs: FeatureSet, data_end) -> FeatureSet:
    """The same rows and labels, recorded as judged against ``data_end``: what a feature file built
    by other code, or with a wrong data end, looks like."""
    return FeatureSet(fs.frame, fs.specs, fs.label_config, fs.config, pd.Timestamp(data_end))


def test_the_feature_set_records_the_data_end_it_judged_labels_against(feature_set, sample_crm):
    assert feature_set.data_end == sample_crm.data_end
    data = from_feature_set(feature_set, TrainConfig())
    latest = feature_set.frame["cutoff"].max()
    assert (data.frame.loc[data.rows(HOLDOUT), "cutoff"] == latest).all()


def test_training_refuses_a_hold_out_whose_horizon_is_not_observed(feature_set):
    latest = pd.Timestamp(feature_set.frame["cutoff"].max())  # 2025-07-01, labelled
    horizon = feature_set.label_config.horizon_days
    data_end = latest + pd.Timedelta(days=horizon - 1)  # one day short of the horizon's end
    with pytest.raises(TrainingInputError) as err:
        from_feature_set(_with_end(feature_set, data_end), TrainConfig())
    message = str(err.value)
    assert "\n" not in message, "one line"
    assert f"hold-out cutoff {latest.date()} is not fully observed" in message, message
    assert str(latest + pd.Timedelta(days=horizon)) in message, "names the horizon's end"
    assert f"the data ends {data_end}" in message, message


def test_a_horizon_ending_exactly_at_the_data_end_is_observed(feature_set):
    latest = pd.Timestamp(feature_set.frame["cutoff"].max())
    data_end = latest + pd.Timedelta(days=feature_set.label_config.horizon_days)
    data = from_feature_set(_with_end(feature_set, data_end), TrainConfig())
    assert data.rows(HOLDOUT).any()


def test_a_feature_set_without_a_recorded_end_is_trusted_with_a_warning(feature_set, caplog):
    legacy = FeatureSet(feature_set.frame, feature_set.specs, feature_set.label_config)
    with caplog.at_level(logging.WARNING, logger="training.dataset"):
        from_feature_set(legacy, TrainConfig())
    assert "does not record the data's end" in caplog.text


def test_no_complete_cutoff_says_where_the_data_ends(feature_set):
    frame = feature_set.frame.assign(label=float("nan"))
    fs = FeatureSet(frame, feature_set.specs, feature_set.label_config, None,
                    pd.Timestamp("2024-07-15"))
    with pytest.raises(TrainingInputError, match="cutoff 2024-07-01 and later are not labelled: "
                       "the 90-day horizon of 2024-07-01 ends 2024-09-29 00:00:00, after the "
                       "data's end 2024-07-15"):
        from_feature_set(fs, TrainConfig())


def test_an_empty_feature_set_is_a_named_error(feature_set):
    empty = FeatureSet(feature_set.frame.head(0), feature_set.specs, LabelConfig())
    with pytest.raises(TrainingInputError, match="the feature set has no rows: no customer is in "
                       "the population at any cutoff"):
        from_feature_set(empty, TrainConfig())


def test_the_tracking_check_names_a_closed_port_in_one_line(local_tracking):
    from tests.ports import free_port
    from training.tracking import TrackingUnavailableError, check_tracking

    uri = f"http://127.0.0.1:{free_port()}"  # bound, then released: nothing listens there
    with pytest.raises(TrackingUnavailableError) as err:
        check_tracking(uri)
    assert str(err.value).startswith(f"the MLflow tracking server {uri} is unreachable "
                                     "(connection refused)"), str(err.value)
    assert "\n" not in str(err.value)


def test_the_tracking_check_passes_on_a_real_server(tracking_server):
    from training.tracking import check_tracking

    assert check_tracking(tracking_server) == tracking_server

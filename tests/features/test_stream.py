"""The feature build one customer partition at a time: the rows of the in-memory build, and the
contract's checks (with the table, column and example rows) across partitions."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from features.build import build_feature_set, read_feature_set
from features.config import FeatureConfig, LabelConfig
from features.contract import ContractError
from features.io import load_crm
from features.sample import SampleSpec, generate, write_partitioned, write_sample
from features.stream import build_to_parquet

CUTOFFS = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]
SPEC = SampleSpec(customers=1_500, months=15, seed=5, block=500)  # three partitions
KEY = ["cutoff", "customer_id"]
runner = CliRunner()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    write_partitioned(SPEC, root / "parts")
    write_sample(generate(SPEC), root / "single")
    return root


@pytest.fixture
def parts(sources, tmp_path):
    """A copy of the partitioned source that a test may break."""
    return shutil.copytree(sources / "parts", tmp_path / "parts")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY).reset_index(drop=True)


def test_partitioned_build_equals_in_memory_build(sources, tmp_path):
    memory = build_feature_set(load_crm(sources / "single"), CUTOFFS, FeatureConfig(),
                               LabelConfig())
    built = build_to_parquet(sources / "parts", CUTOFFS, FeatureConfig(), LabelConfig(),
                             tmp_path / "f.parquet")
    streamed = read_feature_set(tmp_path / "f.parquet")
    assert built.rows == len(memory.frame) > 1000
    assert streamed.specs == memory.specs
    assert streamed.config == memory.config, "vocabulary or BTYD fits differ from the whole base's"
    assert streamed.data_end == memory.data_end
    assert np.isfinite(memory.frame["btyd_p_alive"]).mean() > 0.5, "BTYD not fitted: weak test"
    pd.testing.assert_frame_equal(_sorted(streamed.frame), _sorted(memory.frame))


def test_parallel_build_writes_what_the_serial_build_writes(sources, tmp_path):
    serial = build_to_parquet(sources / "parts", CUTOFFS, FeatureConfig(), LabelConfig(),
                              tmp_path / "serial.parquet", workers=1)
    parallel = build_to_parquet(sources / "parts", CUTOFFS, FeatureConfig(), LabelConfig(),
                                tmp_path / "parallel.parquet", workers=2)
    one, two = (read_feature_set(tmp_path / f) for f in ("serial.parquet", "parallel.parquet"))
    assert parallel.rows == serial.rows == len(two.frame) > 1000
    assert parallel.per_cutoff == serial.per_cutoff
    assert (two.specs, two.config, two.data_end) == (one.specs, one.config, one.data_end)
    assert two.config.btyd_fits and len(two.config.btyd_fits) == len(CUTOFFS)
    pd.testing.assert_frame_equal(two.frame, one.frame)  # same rows in the same order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parallel.parquet", "serial.parquet"], \
        "scratch files (the BTYD spool, the workers' rows) left beside the output"


def test_single_file_source_streams_as_one_partition(sources, tmp_path):
    memory = build_feature_set(load_crm(sources / "single"), CUTOFFS, FeatureConfig(),
                               LabelConfig())
    build_to_parquet(sources / "single", CUTOFFS, FeatureConfig(), LabelConfig(),
                     tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(read_feature_set(tmp_path / "f.parquet").frame, memory.frame)


def _edit_part(folder, table, part, fn):
    path = folder / table / f"part-{part:05d}.parquet"
    frame = fn(pd.read_parquet(path))
    frame.to_parquet(path, index=False)
    return frame


def _build_error(source, tmp_path, workers: int = 1, **kwargs) -> str:
    out = tmp_path / "f.parquet"
    with pytest.raises(ContractError) as err:
        build_to_parquet(source, CUTOFFS, FeatureConfig(), LabelConfig(), out, workers=workers,
                         **kwargs)
    assert not out.exists() and not list(tmp_path.glob(".f.parquet*")), "output half-written"
    return str(err.value)


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_value_in_a_later_partition_names_table_column_and_rows(parts, tmp_path, workers):
    def bad(frame):
        frame["amount"] = frame["amount"].astype(str)  # a text column, as a CSV export gives
        frame.loc[7, "amount"] = "twelve"
        return frame

    _edit_part(parts, "orders", 2, bad)
    message = _build_error(parts, tmp_path / "out", workers)
    assert "orders.amount" in message and "not a number" in message, message
    assert "row 7" in message and "'twelve'" in message and "part-00002" in message, message
    assert "part-00000" not in message, message


def test_future_timestamp_in_a_later_partition_is_refused(parts, tmp_path):
    def future(frame):
        frame.loc[3, "event_ts"] = pd.Timestamp("2099-01-01")
        return frame

    frame = _edit_part(parts, "engagement", 1, future)
    message = _build_error(parts, tmp_path / "out")
    assert "engagement.event_ts" in message and "in the future" in message, message
    assert frame.loc[3, "customer_id"] in message and "2099-01-01" in message, message


def test_as_of_bounds_every_partition(parts, tmp_path):
    crm_end = pd.read_parquet(parts / "orders" / "part-00002.parquet")["order_ts"].max()
    as_of = crm_end - pd.Timedelta(days=1)
    message = _build_error(parts, tmp_path / "out", as_of=as_of)
    assert "after the data's as-of date" in message and "part-00002" in message, message


def test_customer_in_two_partitions_is_a_duplicate(parts, tmp_path):
    first = pd.read_parquet(parts / "customers" / "part-00000.parquet")
    _edit_part(parts, "customers", 2, lambda f: pd.concat([f, first.iloc[[4]]]))
    message = _build_error(parts, tmp_path / "out")
    assert "customers.customer_id" in message and "more than one partition" in message, message
    assert repr(first.loc[4, "customer_id"]) in message, message
    assert "part-00000.parquet" in message and "part-00002.parquet" in message, message


def test_order_id_in_two_partitions_is_a_duplicate(parts, tmp_path):
    other = pd.read_parquet(parts / "orders" / "part-00001.parquet")["order_id"].iloc[0]

    def reuse(frame):
        frame.loc[0, "order_id"] = other
        return frame

    _edit_part(parts, "orders", 0, reuse)
    message = _build_error(parts, tmp_path / "out")
    assert "orders.order_id" in message and repr(other) in message, message


def _as_categorical(column: str, ordered: bool = False, backwards: bool = False):
    """A frame's ``column`` as a user's pandas categorical (saved with the Parquet file);
    ``backwards``: categories in reverse text order."""
    def edit(frame):
        values = frame[column].astype(str)
        categories = sorted(values.unique(), reverse=backwards)
        frame[column] = pd.Categorical(values, categories=categories, ordered=ordered)
        return frame
    return edit


def test_ids_saved_as_categoricals_build_as_text(sources, parts, tmp_path):
    """A user's categorical ids (customers and orders) are text like any other: the build gives
    what it gives on the plain source."""
    for part in range(3):
        _edit_part(parts, "customers", part, _as_categorical("customer_id"))
        _edit_part(parts, "orders", part, _as_categorical("order_id", ordered=True,
                                                           backwards=True))
    plain = build_to_parquet(sources / "parts", CUTOFFS, FeatureConfig(), LabelConfig(),
                             tmp_path / "plain.parquet", workers=1)
    coded = build_to_parquet(parts, CUTOFFS, FeatureConfig(), LabelConfig(),
                             tmp_path / "coded.parquet", workers=1)
    assert coded.rows == plain.rows > 1000
    pd.testing.assert_frame_equal(read_feature_set(tmp_path / "coded.parquet").frame,
                                  read_feature_set(tmp_path / "plain.parquet").frame)


@pytest.mark.parametrize("table,column", [("customers", "customer_id"), ("orders", "order_id")])
def test_an_id_in_two_partitions_is_found_whatever_its_categories_order(parts, tmp_path, table,
                                                                         column):
    """Ordered categoricals whose order is not the text's must not hide an id in two parts (the
    parts' id ranges are compared as text)."""
    first = pd.read_parquet(parts / table / "part-00000.parquet")

    def reuse(frame):  # a customer row copied, or an order of part 2 given part 0's order id
        if table == "customers":
            return pd.concat([frame, first.iloc[[0]]], ignore_index=True)
        frame.loc[0, column] = first.loc[0, column]
        return frame

    _edit_part(parts, table, 2, reuse)
    for part in range(3):
        _edit_part(parts, table, part, _as_categorical(column, ordered=True, backwards=True))
    message = _build_error(parts, tmp_path / "out")
    assert f"{table}.{column}" in message and "more than one partition" in message, message
    assert repr(str(first.loc[0, column])) in message, message


def test_event_of_a_customer_in_another_partition_is_refused(parts, tmp_path):
    stranger = pd.read_parquet(parts / "customers" / "part-00000.parquet")["customer_id"].iloc[0]

    def move(frame):
        frame.loc[0, "customer_id"] = stranger
        return frame

    _edit_part(parts, "tickets", 2, move)
    message = _build_error(parts, tmp_path / "out")
    assert "tickets.customer_id" in message and "not in the customers table" in message, message
    assert stranger in message, message


def test_a_missing_part_file_names_the_table(parts, tmp_path):
    (parts / "surveys" / "part-00001.parquet").unlink()
    message = _build_error(parts, tmp_path / "out")
    assert "surveys" in message and "part-00001" in message, message


def test_cli_builds_partitioned_and_refuses_bad_data_with_exit_2(parts, tmp_path):
    out = tmp_path / "f.parquet"
    args = ["features", "build", "--data", str(parts), "--out", str(out),
            *[a for c in CUTOFFS for a in ("--cutoff", str(c.date()))]]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert len(read_feature_set(out).frame) > 1000
    out.unlink()
    _edit_part(parts, "orders", 1, lambda f: f.drop(columns=["amount"]))
    bad = runner.invoke(app, args)
    assert bad.exit_code == 2 and "orders.amount" in bad.output, bad.output
    assert not out.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_breaches_found_while_building_name_every_part(parts, tmp_path, workers):
    def negative(frame):  # a check the first pass does not make: the build pass finds it
        frame.loc[1, "amount"] = -5.0
        return frame

    _edit_part(parts, "orders", 1, negative)
    _edit_part(parts, "orders", 2, negative)
    message = _build_error(parts, tmp_path / "out", workers)
    assert "orders.amount" in message and "negative values" in message, message
    assert "in 2 of 3 parts" in message and "part-00001" in message, message
    assert "part-00002" in message, message

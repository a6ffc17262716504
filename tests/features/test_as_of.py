"""No timestamp from the future, a label only from a horizon the data covers, no empty feature file.

Issue #17: one order dated 2099 used to pass the contract, move the data's end and so label the
latest cutoff as if its horizon had been observed.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from features.build import build_feature_set, read_feature_set, write_feature_set
from features.config import FeatureConfig, LabelConfig
from features.contract import ContractError, validate
from features.crm import CrmData
from features.io import load_crm
from tests.conftest import write_tables

runner = CliRunner()
FUTURE = pd.Timestamp("2099-01-01")


def _with(tables, table, column, row, value):
    tables = {k: v.copy() for k, v in tables.items()}
    tables[table].loc[row, column] = value
    return tables


@pytest.fixture
def settled(tiny):
    """tiny, with B's contract ending before the latest event (2024-04-10) rather than after it,
    so that an as-of date at the data's end holds every timestamp."""
    tiny["customers"].loc[1, "cancel_date"] = pd.Timestamp("2024-04-05")
    return tiny


def _future_order(tables):
    """The issue's case: one more order, dated 2099."""
    tables = {k: v.copy() for k, v in tables.items()}
    extra = tables["orders"].iloc[[0]].assign(order_ts=FUTURE, order_id="o-2099")
    tables["orders"] = pd.concat([tables["orders"], extra], ignore_index=True)
    return tables


def test_a_future_order_fails_data_validate_by_name(tmp_path, tiny):
    folder = write_tables(_future_order(tiny), tmp_path / "crm")
    run = runner.invoke(app, ["data", "validate", str(folder)])
    assert run.exit_code == 2, run.output
    assert "orders.order_ts: timestamps in the future" in run.output, run.output
    assert "(1 rows)" in run.output and "2099-01-01" in run.output and "'A'" in run.output


@pytest.mark.parametrize("table, column, row", [
    ("customers", "signup_date", 0), ("customers", "cancel_date", 1),
    ("orders", "order_ts", 2), ("tickets", "opened_ts", 0), ("tickets", "closed_ts", 1),
    ("surveys", "response_ts", 0), ("surveys", "sent_ts", 3), ("engagement", "event_ts", 4),
    ("offers", "sent_ts", 1), ("offers", "accepted_ts", 0),
])
def test_every_event_and_date_column_is_checked_for_the_future(tiny, table, column, row):
    with pytest.raises(ContractError) as err:
        validate(_with(tiny, table, column, row, FUTURE))
    found = [p for p in err.value.problems if p.table == table and p.column == column
             and "in the future" in p.what]
    assert len(found) == 1 and found[0].count == 1, str(err.value)
    assert "2099-01-01" in found[0].examples


def test_the_current_time_is_the_bound_when_no_as_of_is_declared(tiny):
    tables = _with(tiny, "orders", "order_ts", 2, pd.Timestamp("2024-06-01"))
    validate(tables, now=pd.Timestamp("2024-06-01"))  # at the bound: fine
    with pytest.raises(ContractError, match="orders.order_ts: timestamps in the future"):
        validate(tables, now=pd.Timestamp("2024-05-31T23:59"))


def test_events_after_the_declared_as_of_date_are_refused_from_the_command_line(tmp_path,
                                                                                settled):
    folder = write_tables(settled, tmp_path / "crm")
    # tiny's latest timestamp is a ticket closed on 2024-04-10; orders end 2024-03-20
    late = runner.invoke(app, ["data", "validate", str(folder), "--as-of", "2024-03-31"])
    assert late.exit_code == 2, late.output
    assert "tickets.closed_ts: timestamps after the data's as-of date 2024-03-31" in late.output
    assert "orders.order_ts" not in late.output, "no order is after the as-of date"
    ok = runner.invoke(app, ["data", "validate", str(folder), "--as-of", "2024-04-10"])
    assert ok.exit_code == 0, ok.output
    assert "data ends    2024-04-10 00:00:00 (as-of date)" in ok.output
    config = tmp_path / "settings.yaml"
    config.write_text("data:\n  as_of: 2024-03-31\n")
    from_config = runner.invoke(app, ["data", "validate", str(folder), "--config", str(config)])
    assert from_config.exit_code == 2 and "as-of date 2024-03-31" in from_config.output


@pytest.mark.parametrize("as_of, words", [
    ("2099-01-01", "as_of: the as-of date 2099-01-01 00:00:00 is in the future"),
    ("last tuesday", "as_of: 'last tuesday' is not a date or timestamp"),
])
def test_a_bad_as_of_date_is_named(tmp_path, tiny, as_of, words):
    folder = write_tables(tiny, tmp_path / "crm")
    run = runner.invoke(app, ["data", "validate", str(folder), "--as-of", as_of])
    assert run.exit_code == 2, run.output
    assert words in run.output, run.output


def test_features_build_refuses_a_future_order_and_writes_nothing(tmp_path, tiny):
    folder = write_tables(_future_order(tiny), tmp_path / "crm")
    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--data", str(folder), "--cutoff",
                              "2024-01-01", "--cutoff", "2024-03-01", "--out", str(out)])
    assert run.exit_code == 2, run.output
    assert "orders.order_ts: timestamps in the future" in run.output, run.output
    assert not out.exists()


def _crm(tiny) -> CrmData:
    return CrmData.from_tables(validate(tiny))


def test_a_cutoff_is_labelled_only_when_its_whole_horizon_is_in_the_data(tiny):
    labels = LabelConfig(horizon_days=30)
    crm = _crm(tiny)
    assert crm.data_end == pd.Timestamp("2024-04-10")
    # 2024-03-11 + 30 days = 2024-04-10, the data's end: observed; a day later it is not
    fs = build_feature_set(crm, [pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-12")],
                           FeatureConfig(btyd=None), labels)
    known = fs.frame.groupby("cutoff")["label"].apply(lambda s: s.notna().all())
    assert known[pd.Timestamp("2024-03-11")] and not fs.frame.loc[
        fs.frame["cutoff"] == pd.Timestamp("2024-03-12"), "label"].notna().any()
    assert fs.data_end == pd.Timestamp("2024-04-10")


def test_the_data_end_travels_with_the_feature_file(tmp_path, tiny):
    fs = build_feature_set(_crm(tiny), [pd.Timestamp("2024-03-01")], FeatureConfig(btyd=None),
                           LabelConfig(horizon_days=30), data_end=pd.Timestamp("2024-05-01"))
    assert fs.data_end == pd.Timestamp("2024-05-01")
    back = read_feature_set(write_feature_set(fs, tmp_path / "fs.parquet"))
    assert back.data_end == pd.Timestamp("2024-05-01")


def test_a_declared_as_of_date_is_the_data_end_for_labels(tmp_path, settled):
    """Without --as-of the data ends at its latest timestamp (2024-04-10); declaring that it was
    extracted on 2024-05-01 makes a horizon ending then observed."""
    folder = write_tables(settled, tmp_path / "crm")
    args = ["features", "build", "--data", str(folder), "--cutoff", "2024-04-01",
            "--horizon-days", "30"]
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "a.parquet")])
    assert plain.exit_code == 0, plain.output
    assert read_feature_set(tmp_path / "a.parquet").frame["label"].isna().all()
    declared = runner.invoke(app, [*args, "--as-of", "2024-05-01",
                                   "--out", str(tmp_path / "b.parquet")])
    assert declared.exit_code == 0, declared.output
    fs = read_feature_set(tmp_path / "b.parquet")
    assert fs.frame["label"].notna().all() and fs.data_end == pd.Timestamp("2024-05-01")


def test_load_crm_warns_when_the_as_of_date_is_long_after_the_last_event(tmp_path, settled,
                                                                          caplog):
    folder = write_tables(settled, tmp_path / "crm")
    with caplog.at_level("WARNING", logger="features.io"):
        load_crm(folder, as_of="2024-04-12")
    assert not caplog.records
    with caplog.at_level("WARNING", logger="features.io"):
        load_crm(folder, as_of="2024-06-01")
    assert "52 days before its as-of date" in caplog.text


# --- empty data: a named error and exit 2, never a 0-row feature file ------------------------

def test_no_customers_is_a_named_error_and_nothing_is_written(tmp_path, tiny):
    empty = {"customers": tiny["customers"].head(0), "orders": tiny["orders"].head(0)}
    folder = write_tables(empty, tmp_path / "crm")
    out = tmp_path / "fs.parquet"
    run = runner.invoke(app, ["features", "build", "--data", str(folder), "--cutoff",
                              "2024-03-01", "--out", str(out)])
    assert run.exit_code == 2, run.output
    assert "customers: the table has no rows" in run.output, run.output
    assert not out.exists()


def test_an_empty_population_is_a_named_error_and_nothing_is_written(tmp_path, tiny):
    folder = write_tables(tiny, tmp_path / "crm")
    out = tmp_path / "fs.parquet"
    # before anyone signed up: nobody is in the population
    run = runner.invoke(app, ["features", "build", "--data", str(folder), "--cutoff",
                              "2022-01-01", "--cutoff", "2022-06-01", "--out", str(out)])
    assert run.exit_code == 2, run.output
    assert ("no customer is in the population at any cutoff (2022-01-01, 2022-06-01)"
            in run.output), run.output
    assert "signed up before the cutoff" in run.output
    assert not out.exists()

"""Every kind of bad input names the table, the column, the count and example rows; nothing written."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from features.contract import ContractError, validate
from features.io import load_crm
from tests.conftest import write_tables

runner = CliRunner()


def _break(tables, table, fn):
    tables = {k: v.copy() for k, v in tables.items()}
    if fn is None:
        del tables[table]
    else:
        tables[table] = fn(tables[table])
    return tables


def _set(col, row, value):
    def fn(frame):
        frame[col] = frame[col].astype(object)
        frame.loc[row, col] = value
        return frame
    return fn


BAD_INPUTS = [
    # (case, table, column, change, words that must appear)
    ("missing table", "orders", None, None, ["orders", "required table is missing"]),
    ("missing column", "orders", "amount", lambda f: f.drop(columns=["amount"]),
     ["orders.amount", "required column is missing"]),
    ("wrong type", "orders", "amount", _set("amount", 1, "twelve"),
     ["orders.amount", "not a number", "1 rows", "twelve"]),
    ("unparseable timestamp", "tickets", "opened_ts", _set("opened_ts", 0, "last tuesday"),
     ["tickets.opened_ts", "does not parse", "last tuesday"]),
    ("negative amount", "orders", "amount", _set("amount", 2, -30.0),
     ["orders.amount", "negative", "1 rows", "-30"]),
    ("duplicated customer id", "customers", "customer_id", _set("customer_id", 2, "A"),
     ["customers.customer_id", "duplicated", "2 rows", "'A'"]),
    ("unknown customer", "engagement", "customer_id", _set("customer_id", 0, "ZZZ"),
     ["engagement.customer_id", "not in the customers table", "1 rows", "ZZZ"]),
    ("event before signup", "orders", "order_ts",
     _set("order_ts", 5, pd.Timestamp("2020-01-01")),
     ["orders.order_ts", "before the customer's signup_date", "1 rows", "'C'"]),
    ("not a boolean", "offers", "treated", _set("treated", 0, "maybe"),
     ["offers.treated", "not a boolean", "maybe"]),
    ("score off its scale", "surveys", "score", _set("score", 0, 11.0),
     ["surveys.score", "nps score outside 0-10"]),
    ("duplicated order id", "orders", "order_id", _set("order_id", 1, "o1"),
     ["orders.order_id", "duplicated order id", "2 rows"]),
]


@pytest.mark.parametrize("case,table,column,change,words", BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_named_and_nothing_is_written(tmp_path, tiny, case, table, column, change,
                                                   words):
    src = write_tables(_break(tiny, table, change), tmp_path / "crm", fmt="csv")
    out = tmp_path / "out" / "features.parquet"

    validate_run = runner.invoke(app, ["data", "validate", str(src)])
    build_run = runner.invoke(app, ["features", "build", "--data", str(src), "--cutoff",
                                    "2024-04-01", "--out", str(out)])

    for run in (validate_run, build_run):
        assert run.exit_code == 2, f"{case}: exit {run.exit_code}, output {run.output}"
        for word in words:
            assert word in run.output, f"{case}: {word!r} not in {run.output!r}"
    assert not out.exists(), f"{case}: an output was written despite bad input"
    assert not out.parent.exists() or not any(out.parent.iterdir()), "temporary files left behind"


def test_all_problems_are_reported_at_once(tiny):
    tiny["orders"].loc[0, "amount"] = -1.0
    tiny["customers"].loc[1, "customer_id"] = "A"
    with pytest.raises(ContractError) as err:
        validate(tiny)
    where = {(p.table, p.column) for p in err.value.problems}
    assert {("orders", "amount"), ("customers", "customer_id")} <= where, where


def test_good_data_reads_from_parquet_csv_and_duckdb_alike(tmp_path, tiny):
    from_parquet = load_crm(write_tables(tiny, tmp_path / "pq"))
    from_csv = load_crm(write_tables(tiny, tmp_path / "csv", fmt="csv"))
    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    for name, frame in tiny.items():
        con.register("frame", frame)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    con.close()
    from_duckdb = load_crm(db)
    for name in tiny:
        a, b, c = (getattr(x, name) for x in (from_parquet, from_csv, from_duckdb))
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{name} parquet vs csv")
        pd.testing.assert_frame_equal(a, c, check_dtype=False, obj=f"{name} parquet vs duckdb")


def test_optional_tables_may_be_missing(tmp_path, tiny):
    crm = load_crm(write_tables({k: tiny[k] for k in ("customers", "orders")}, tmp_path / "crm"))
    assert crm.tickets is None and crm.engagement is None
    assert len(crm.orders) == len(tiny["orders"])


def test_missing_source_is_a_clear_error(tmp_path):
    run = runner.invoke(app, ["data", "validate", str(tmp_path / "nowhere")])
    assert run.exit_code == 2
    assert "does not exist" in run.output


def test_integer_ids_match_across_tables(tmp_path, tiny):
    tiny["customers"]["customer_id"] = [1, 2, 3]
    for name in ("orders", "tickets", "surveys", "engagement", "offers"):
        tiny[name]["customer_id"] = tiny[name]["customer_id"].map({"A": 1, "B": 2, "C": 3})
    crm = load_crm(write_tables(tiny, tmp_path / "crm", fmt="csv"))
    assert set(crm.orders["customer_id"]) == {"1", "2", "3"}


def test_a_contract_error_keeps_its_message_across_processes():
    """The streamed build's workers send their errors back pickled: the message that names the
    table, column and examples must arrive whole."""
    import pickle

    from features.contract import Problem

    error = ContractError([Problem("orders", "amount", "is negative", 2, "O1=-3.0, O2=-1.5")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ContractError and str(again) == str(error)
    assert "orders.amount" in str(again) and again.problems == error.problems


@pytest.mark.parametrize("ids,dup_rows", [
    (["o1", "o2", "o3", "o4"], []),  # increasing: no duplicate
    (["o1", "o2", "o2", "o3"], [1, 2]),  # increasing but for one repeat
    (["o4", "o1", "o3", "o1"], [1, 3]),  # no order
    (["o1", None, "o2", None], []),  # missing ids are not duplicates
    (["o1", None, "o1", "o2"], [0, 2]),  # a gap between two equal ids
])
def test_duplicated_order_ids_are_found_in_any_order(tiny, ids, dup_rows):
    orders = pd.DataFrame({"customer_id": "A", "order_ts": pd.Timestamp("2024-06-01"),
                           "amount": 10.0, "order_id": ids})
    tables = {**tiny, "orders": orders}
    if not dup_rows:
        assert len(validate(tables)["orders"]) == len(ids)
        return
    with pytest.raises(ContractError) as err:
        validate(tables)
    problem, = [p for p in err.value.problems if p.column == "order_id"]
    assert problem.count == len(dup_rows) and "duplicated order id" in problem.what
    assert [int(r.split()[1].rstrip(":")) for r in problem.examples.split("; ")] == dup_rows


@pytest.mark.parametrize("ids,missing,dup_rows", [
    (["A", "B", None, "B", None], [2, 4], [1, 3]),  # both problems, each row under its own
    (["A", "B", "B", None], [3], [1, 2]),  # increasing but for one repeat, then a missing id
    (["A", None, None, "C"], [1, 2], []),  # two missing ids are missing, not one id twice
])
def test_missing_and_duplicated_customer_ids_are_named_at_once(tiny, ids, missing, dup_rows):
    """Every problem in one report: the rows without an id as missing values, the ids given
    twice as duplicates (rows without an id are not the same customer twice: they are named
    once, as missing)."""
    customers = pd.DataFrame({"customer_id": ids, "signup_date": pd.Timestamp("2023-01-01")})
    with pytest.raises(ContractError) as err:
        validate({**tiny, "customers": customers})
    found = {p.what: p for p in err.value.problems
             if p.table == "customers" and p.column == "customer_id"}
    rows = {what: [int(r.split()[1].rstrip(":")) for r in p.examples.split("; ")]
            for what, p in found.items()}
    assert rows.get("missing values in a required column") == missing, found
    assert rows.get("duplicated customer id", []) == dup_rows, found


def test_an_event_of_an_unknown_customer_is_not_also_called_early(tiny):
    """Its customer has no signup date to be early against: one problem, not two."""
    orders = tiny["orders"].copy()
    orders.loc[len(orders)] = {"customer_id": "Z", "order_ts": pd.Timestamp("2000-01-01"),
                               "amount": 1.0, "order_id": "oz"}
    orders.loc[len(orders)] = {"customer_id": "C", "order_ts": pd.Timestamp("2000-01-01"),
                               "amount": 1.0, "order_id": "oc"}
    with pytest.raises(ContractError) as err:
        validate({**tiny, "orders": orders})
    found = {p.what: p for p in err.value.problems if p.table == "orders"}
    assert found["event for a customer not in the customers table"].count == 1
    early = found["event before the customer's signup_date"]
    assert early.count == 1 and "'C'" in early.examples and "'Z'" not in early.examples

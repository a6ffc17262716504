"""The first pass on one part: a glance at the columns the whole base needs gives what a full
check gives; a glance at data it cannot use says so; the customers found by the checks are those
the feature build would find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import PreparedCrm
from features.config import FeatureConfig
from features.contract import utc_now, validate
from features.crm import CrmData
from features.part_scan import ScanJob, check_part, glance_part
from features.partitions import partitions
from features.sample import SampleSpec, write_partitioned

CUTOFFS = [pd.Timestamp("2024-10-01"), pd.Timestamp("2025-01-01")]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("part_scan") / "parts"
    write_partitioned(SampleSpec(customers=600, months=15, seed=11, block=300), root)
    return root


def _job(part) -> ScanJob:
    return ScanJob(part, CUTOFFS, CUTOFFS[-1], None, utc_now())


def test_a_glance_finds_what_the_full_check_finds(source):
    for part in partitions(source):
        checked, glanced = check_part(_job(part)), glance_part(_job(part))
        assert checked.problems == [] and glanced.failed is None, glanced.failed
        assert glanced.customers == checked.customers == 300
        for field in ("rows", "ranges", "latest", "signup_end", "types"):
            assert getattr(glanced, field) == getattr(checked, field), field
        assert sum(n for n, _ in glanced.types.values()) > 100, "no event types: weak test"
        for c in CUTOFFS:
            for f in ("frequency", "recency", "age", "monetary"):
                np.testing.assert_array_equal(getattr(glanced.summaries[c], f),
                                              getattr(checked.summaries[c], f))
        assert len(glanced.summaries[CUTOFFS[-1]].frequency) > 100


def test_a_glance_at_data_it_cannot_type_says_so_instead_of_raising(source, tmp_path):
    part = partitions(source)[1]
    orders = pd.read_parquet(part.files["orders"])
    orders["order_ts"] = orders["order_ts"].astype(str)
    orders.loc[2, "order_ts"] = "not a time"
    bad = tmp_path / "orders.parquet"
    orders.to_parquet(bad, index=False)
    broken = type(part)(part.name, {**part.files, "orders": bad})
    found = glance_part(_job(broken))
    assert found.failed is not None and "order_ts" in found.failed, found.failed
    assert found.failed_trace.startswith("Traceback") and "typed_columns" in found.failed_trace
    assert check_part(_job(broken)).problems, "the full check names the problem"


@pytest.mark.parametrize("error", [MemoryError, NameError])
def test_what_data_cannot_cause_is_raised_by_the_glance_not_taken_for_bad_data(
        source, monkeypatch, error):
    """A worker out of memory (or a bug) stops the build with its own exception and traceback;
    it is not turned into a fallback check of every part."""
    from features import part_scan, scan

    def fails(*args, **kwargs):
        raise error("from the glance")

    full_checks = []
    monkeypatch.setattr(part_scan, "_share", fails)
    monkeypatch.setattr(scan, "check_part", lambda job: full_checks.append(job) or check_part(job))
    with pytest.raises(error, match="from the glance"):
        glance_part(_job(partitions(source)[0]))
    with pytest.raises(error, match="from the glance"):
        scan.scan_source(source, CUTOFFS, FeatureConfig(), checks=False)
    assert full_checks == []


def test_a_failed_glance_logs_where_it_failed_and_the_full_check_names_the_problem(
        source, tmp_path, caplog):
    import shutil

    from features.contract import ContractError
    from features.scan import Unchecked, scan_source

    copy = tmp_path / "parts"
    shutil.copytree(source, copy)
    part = partitions(copy)[1]
    orders = pd.read_parquet(part.files["orders"])
    orders["amount"] = orders["amount"].astype(str)
    orders.loc[3, "amount"] = "lots"
    orders.to_parquet(part.files["orders"], index=False)
    with caplog.at_level("WARNING", logger="features.scan"), pytest.raises(Unchecked):
        scan_source(copy, CUTOFFS, FeatureConfig(), checks=False)
    logged = [r.getMessage() for r in caplog.records if r.name == "features.scan"]
    assert any(part.name in m and "Traceback" in m and "amount" in m for m in logged), logged
    with pytest.raises(ContractError, match="amount"):
        scan_source(copy, [], FeatureConfig())


def test_the_checks_match_events_to_the_customers_the_build_would(source):
    tables = partitions(source)[0].read()
    codes: dict[str, np.ndarray] = {}
    typed = validate(tables, codes=codes)
    assert set(codes) == {"orders", "tickets", "surveys", "engagement", "offers"} & set(typed)
    reused, found = PreparedCrm(CrmData.from_tables(typed), codes), PreparedCrm(
        CrmData.from_tables(typed))
    for name in ("orders", "tickets", "answers", "sent", "engagement", "offers"):
        a, b = getattr(reused, name), getattr(found, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a.codes, b.codes)
            np.testing.assert_array_equal(a.ts, b.ts)
    assert len(reused.engagement.codes) > 1000


@pytest.mark.parametrize("change", ["numbers", "missing"])
def test_the_glance_counts_event_types_stored_as_numbers_or_with_gaps_as_the_check(
        source, tmp_path, change):
    """The glance reads text event types as categoricals (codes); types stored otherwise are read
    as they are, and both count what the full check counts."""
    part = partitions(source)[0]
    engagement = pd.read_parquet(part.files["engagement"])
    if change == "numbers":
        engagement["event_type"] = pd.factorize(engagement["event_type"])[0] % 3
    else:
        engagement["event_type"] = engagement["event_type"].astype(object)
        engagement.loc[::7, "event_type"] = None
    path = tmp_path / "engagement.parquet"
    engagement.to_parquet(path, index=False)
    changed = type(part)(part.name, {**part.files, "engagement": path})
    glanced = glance_part(_job(changed))
    assert glanced.failed is None, glanced.failed_trace
    before = pd.to_datetime(engagement["event_ts"]) < CUTOFFS[-1]
    kinds = engagement.loc[before, "event_type"].dropna().astype(str)
    assert {k: n for k, (n, _) in glanced.types.items()} == kinds.value_counts().to_dict()
    if change == "numbers":  # valid data: the full check counts the same
        assert glanced.types == check_part(_job(changed)).types

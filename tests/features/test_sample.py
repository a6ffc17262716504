"""The sample CRM: repeatable by seed, realistic churn, and the relationships it promises."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from features.build import build_feature_set
from features.config import FeatureConfig, LabelConfig
from features.sample import SampleSpec, generate, write_sample
from features.sample.mechanics import OFFER_IDS

CUTOFFS = [pd.Timestamp(c) for c in ("2024-07-01", "2024-10-01", "2025-01-01", "2025-04-01",
                                     "2025-07-01")]


def _digests(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.parquet"))}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    spec = SampleSpec(customers=500, months=8, seed=42)
    write_sample(generate(spec), tmp_path / "a")
    write_sample(generate(spec), tmp_path / "b")
    write_sample(generate(SampleSpec(customers=500, months=8, seed=43)), tmp_path / "c")
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert len(a) == 8, sorted(a)  # six tables and two truth files
    assert a == b, "same seed gave different bytes"
    assert a["orders.parquet"] != c["orders.parquet"], "another seed gave the same orders"


def test_rewriting_a_sample_replaces_it_whole(tmp_path):
    out = tmp_path / "crm"
    write_sample(generate(SampleSpec(customers=300, months=8, seed=1)), out)
    (out / "stale.parquet").write_bytes(b"old")
    write_sample(generate(SampleSpec(customers=200, months=8, seed=1)), out)
    assert not (out / "stale.parquet").exists()
    assert len(pd.read_parquet(out / "customers.parquet")) == 200
    assert [p.name for p in tmp_path.iterdir()] == ["crm"], "temporary folders left behind"


def test_monthly_churn_is_in_a_realistic_band(sample_dir):
    truth = pd.read_parquet(sample_dir / "_truth" / "churn_probability.parquet")
    monthly = truth.groupby("month")["probability"].mean()
    assert monthly.between(0.02, 0.08).all(), monthly.describe()
    customers = pd.read_parquet(sample_dir / "customers.parquet")
    contract = customers[customers["has_contract"]]
    cancelled = contract["cancel_date"].notna().mean()
    assert 0.2 < cancelled < 0.9, f"{cancelled:.0%} of contract customers cancelled in 24 months"


@pytest.fixture(scope="module")
def stacked(sample_crm) -> pd.DataFrame:
    return build_feature_set(sample_crm, CUTOFFS, FeatureConfig(), LabelConfig()).frame


@pytest.fixture(scope="module")
def contracts(sample_crm) -> pd.DataFrame:
    return build_feature_set(sample_crm, CUTOFFS, FeatureConfig(),
                             LabelConfig(definition="contractual")).frame


def _churn_rate(frame: pd.DataFrame, mask) -> float:
    return frame.loc[mask, "label"].mean()


def test_customers_with_complaints_churn_more(stacked, contracts, sample_dir):
    truth = pd.read_parquet(sample_dir / "_truth" / "churn_probability.parquet").rename(
        columns={"month": "cutoff"})
    for name, frame in (("active customers", stacked), ("contract customers", contracts)):
        complained = (frame["complaints_365d"] > 0).to_numpy()
        assert complained.sum() > 50
        hazard = frame[["customer_id", "cutoff"]].merge(
            truth, on=["customer_id", "cutoff"], how="left")["probability"].to_numpy()
        with_, without = np.nanmean(hazard[complained]), np.nanmean(hazard[~complained])
        assert with_ > 1.3 * without, f"{name}, true hazard: {with_:.3f} vs {without:.3f}"
    # and where the outcome is recorded (cancellations), the labels show it too
    complained = contracts["complaints_365d"] > 0
    with_, without = _churn_rate(contracts, complained), _churn_rate(contracts, ~complained)
    assert with_ > 1.3 * without, f"contractual labels: {with_:.3f} vs {without:.3f}"


def test_detractors_churn_more_than_promoters(stacked):
    rate_d = _churn_rate(stacked, stacked["nps_detractor"] == 1)
    rate_p = _churn_rate(stacked, stacked["nps_promoter"] == 1)
    assert rate_d > 1.3 * rate_p, (rate_d, rate_p)


def test_engagement_falls_before_churn(stacked):
    churners, stayers = stacked["label"] == 1, stacked["label"] == 0
    for feature in ("visits_trend_90d", "orders_trend_90d", "active_days_30d"):
        assert stacked.loc[churners, feature].mean() < stacked.loc[stayers, feature].mean(), feature
    assert (stacked.loc[churners, "email_open_rate_90d"].mean()
            < stacked.loc[stayers, "email_open_rate_90d"].mean())


def test_most_unhappy_customers_never_complain(sample_crm, sample_dir):
    truth = pd.read_parquet(sample_dir / "_truth" / "churn_probability.parquet")
    risky = truth.loc[truth["probability"] > 0.1, "customer_id"].unique()
    tickets = sample_crm.tickets
    complained = tickets.loc[tickets["is_complaint"].astype(bool), "customer_id"].unique()
    share = np.isin(risky, complained).mean()
    assert share < 0.5, f"{share:.0%} of high-risk customers complained"


def test_usage_summaries_track_engagement_and_silent_leavers_report_zero_days(sample_crm):
    events = sample_crm.engagement
    usage = events[events["event_type"] == "active_days"]
    assert usage["value"].between(0, 31).all()
    per_month = usage.groupby([usage["customer_id"], usage["event_ts"].dt.to_period("M")]).size()
    assert (per_month == 1).all(), "more than one usage summary for a customer and month"
    customers = sample_crm.customers.set_index("customer_id")
    # a contract customer's account closes with the contract: the month it ends is the last one
    cancel = customers.loc[usage["customer_id"], "cancel_date"].dt.to_period("M").to_numpy()
    after = usage["event_ts"].dt.to_period("M").to_numpy() > cancel
    assert not after.any(), usage[after].head()
    # a silent leaver's account keeps reporting zero days (it is not a churn flag in disguise)
    last_order = sample_crm.orders.groupby("customer_id")["order_ts"].max()
    u = usage.assign(last_order=usage["customer_id"].map(last_order))
    long_gone = u["event_ts"] > u["last_order"] + pd.Timedelta(days=200)
    assert (u.loc[long_gone, "value"] == 0).mean() > 0.3
    # active days go with the other engagement signals
    sessions = events[events["event_type"].isin(["web_session", "app_login"])].groupby(
        "customer_id").size()
    mean_days = usage.groupby("customer_id")["value"].mean()
    both = pd.concat([mean_days, sessions], axis=1).fillna(0)
    assert both.corr(method="spearman").iloc[0, 1] > 0.3


def test_spend_is_heavy_tailed_and_seasonal(sample_crm):
    orders = sample_crm.orders
    per_customer = orders.groupby("customer_id")["amount"].sum().sort_values(ascending=False)
    top_decile = per_customer.head(len(per_customer) // 10).sum() / per_customer.sum()
    assert top_decile > 0.35, f"top 10% of customers bring {top_decile:.0%} of spend"
    month = orders["order_ts"].dt.month
    assert (month.isin([11, 12]).sum() / 4) > (month.isin([1, 2]).sum() / 4) * 1.2


def test_campaigns_are_randomised_and_effects_are_heterogeneous(sample_crm, sample_dir):
    offers = sample_crm.offers
    assert set(offers["offer_id"]) == set(OFFER_IDS)
    treated = offers["treated"].astype(bool).mean()
    assert 0.7 < treated < 0.9, treated
    effects = pd.read_parquet(sample_dir / "_truth" / "offer_effects.parquet")
    assert set(effects["offer_id"]) == set(OFFER_IDS)
    assert (effects["effect"] < -0.02).mean() > 0.05, "no persuadable customers"
    assert (effects["effect"] > 0.0).mean() > 0.01, "no customer is put off by contact"
    assert effects.groupby("offer_id")["effect"].mean().nunique() == len(OFFER_IDS)


def test_contract_churn_is_recorded_and_others_just_stop(sample_crm):
    customers = sample_crm.customers
    assert customers.loc[~customers["has_contract"].astype(bool), "cancel_date"].isna().all()
    assert customers.loc[customers["has_contract"].astype(bool), "cancel_date"].notna().any()


@pytest.mark.parametrize("bad", [{"customers": 0}, {"months": 2}])
def test_bad_sample_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        SampleSpec(**bad)


@pytest.mark.parametrize("customers, block, parts", [
    (100_000, 100_000, False), (100_001, 100_000, True), (1, 1, False), (2, 1, True)])
def test_part_files_are_the_default_above_one_block(customers, block, parts):
    from features.sample import parts_by_default

    spec = SampleSpec(customers=customers, block=block)
    assert parts_by_default(spec) is parts, (customers, block)


def test_partitioned_sample_is_the_single_file_sample_cut_by_customer_block(tmp_path):
    """Written block by block (one block in memory), the part files of each table, in order,
    are the single file's rows; each part holds one block of customers in every table."""
    from features.sample import write_partitioned

    spec = SampleSpec(customers=700, months=8, seed=9, block=250)
    write_sample(generate(spec), tmp_path / "single")
    write_partitioned(spec, tmp_path / "parts")
    tables = [p.relative_to(tmp_path / "single").with_suffix("").as_posix()
              for p in sorted((tmp_path / "single").rglob("*.parquet"))]
    assert len(tables) == 8, tables
    for name in tables:
        parts = sorted((tmp_path / "parts" / name).glob("part-*.parquet"))
        assert [p.name for p in parts] == [f"part-{b:05d}.parquet" for b in range(3)], name
        joined = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(joined, pd.read_parquet(tmp_path / "single" /
                                                              f"{name}.parquet"), obj=name)
    customers = [set(pd.read_parquet(tmp_path / "parts" / "customers" / f"part-{b:05d}.parquet")
                     ["customer_id"]) for b in range(3)]
    assert [len(c) for c in customers] == [250, 250, 200]
    for b in range(3):
        orders = pd.read_parquet(tmp_path / "parts" / "orders" / f"part-{b:05d}.parquet")
        assert set(orders["customer_id"]) <= customers[b], f"part {b} has other blocks' orders"


def test_a_block_does_not_depend_on_the_customer_count(tmp_path):
    """Block b is drawn from its own seed: a larger sample keeps the smaller one's first blocks."""
    small = generate(SampleSpec(customers=500, months=8, seed=9, block=250))
    large = generate(SampleSpec(customers=900, months=8, seed=9, block=250))
    for key, values in small.tables["orders"].items():
        assert np.array_equal(values, large.tables["orders"][key][:len(values)]), key
    assert not np.array_equal(small.customers["signup"][:250], small.customers["signup"][250:500])

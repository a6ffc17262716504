"""BTYD family: BG/NBD and Gamma-Gamma against lifetimes on CDNOW, point in time, degenerate
inputs, and the direction of P(alive), expected orders and expected value.

lifetimes is the reference here only; the ``features`` package must not import it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import summary_data_from_transaction_data

from features.events import EventView, SortedEvents
from features.families import FeatureSink
from features.families.btyd import (
    BgNbdParams,
    BtydConfig,
    BtydFitError,
    add_btyd,
    expected_order_value,
    expected_orders,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    summarise,
)

H = 90
NAMES = ("btyd_p_alive", f"btyd_expected_orders_{H}d", f"btyd_expected_value_{H}d")
CDNOW_CUTOFF = pd.Timestamp("1997-10-01")

# Agreement with lifetimes measured on CDNOW (both fit by maximum likelihood, penalizer 0):
# BG/NBD parameters within 5e-7 relative (Gamma-Gamma 1e-8), P(alive) within 1e-7, expected
# purchases and value within 3e-6 relative. The tolerances below leave room for another
# optimiser's last digits, nothing more.
PARAM_RTOL = 1e-4
P_ALIVE_ATOL = 1e-5
EXPECTED_RTOL = 1e-4


def _view(orders: pd.DataFrame, customers, cutoff):
    index = pd.Index(customers)
    return SortedEvents.from_frame(orders, index, "order_ts", ["amount"]).before(cutoff)


def _features(orders: pd.DataFrame, customers, cutoff, config: BtydConfig = BtydConfig()) -> pd.DataFrame:
    view = _view(orders, customers, cutoff)
    sink = FeatureSink()
    add_btyd(sink, view, np.zeros(view.n), H, config)
    assert [s.name for s in sink.specs] == list(NAMES)
    return pd.DataFrame(sink.values, index=pd.Index(customers))


def _orders(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount"]).astype(
        {"order_ts": "datetime64[ns]", "amount": float})


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW's 69,659 orders of 23,570 customers (Jan 1997 - Jun 1998), shipped in lifetimes."""
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1,
                      names=["customer_id", "date", "cds", "amount"], dtype={"customer_id": str})
    raw["order_ts"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    return raw[["customer_id", "order_ts", "amount"]]


def _lifetimes_summary(orders: pd.DataFrame, customers, cutoff) -> pd.DataFrame:
    past = orders[orders["order_ts"] < cutoff]
    return summary_data_from_transaction_data(
        past, "customer_id", "order_ts", monetary_value_col="amount",
        observation_period_end=cutoff, freq="D").reindex(customers)


# --- the models against lifetimes and the published CDNOW estimates --------------------------


def test_bgnbd_matches_lifetimes_on_cdnow_summary():
    d = load_cdnow_summary()  # the 2,357-customer CDNOW sample, in weeks, as in the paper
    x, tx, T = d["frequency"].to_numpy(float), d["recency"].to_numpy(), d["T"].to_numpy()
    ours = fit_bgnbd(x, tx, T)
    ref = BetaGeoFitter(penalizer_coef=0.0).fit(x, tx, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(ref.params_[name], rel=PARAM_RTOL), name
    # Fader, Hardie & Lee (2005), table 1
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert getattr(ours, name) == pytest.approx(value, abs=6e-4), f"{name} vs the paper"
    diff = np.abs(p_alive(ours, x, tx, T) - ref.conditional_probability_alive(x, tx, T))
    assert diff.max() < P_ALIVE_ATOL, f"P(alive) differs by up to {diff.max():.2e}"
    for h in (1, 39, 52, 156):
        got = expected_orders(ours, h, x, tx, T)
        want = ref.conditional_expected_number_of_purchases_up_to_time(h, x, tx, T)
        rel = np.abs(got / want - 1).max()
        assert rel < EXPECTED_RTOL, f"expected purchases in {h} weeks differ by up to {rel:.2e}"


@pytest.mark.parametrize("penalizer", [0.001, 0.1])
def test_bgnbd_penalizer_means_what_it_means_in_lifetimes(penalizer):
    d = load_cdnow_summary()
    x, tx, T = d["frequency"].to_numpy(float), d["recency"].to_numpy(), d["T"].to_numpy()
    ours = fit_bgnbd(x, tx, T, penalizer=penalizer)
    ref = BetaGeoFitter(penalizer_coef=penalizer).fit(x, tx, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(ref.params_[name], rel=PARAM_RTOL), name
    assert ours.a < 0.6, "the penalty pulls the dropout parameters down (a = 0.79 without it)"


def test_gamma_gamma_matches_lifetimes_on_cdnow_summary():
    d = load_cdnow_summary_data_with_monetary_value()
    d = d[d["frequency"] > 0]
    x, m = d["frequency"].to_numpy(float), d["monetary_value"].to_numpy()
    ours = fit_gamma_gamma(x, m)
    ref = GammaGammaFitter(penalizer_coef=0.0).fit(d["frequency"], d["monetary_value"])
    for name in ("p", "q", "v"):
        assert getattr(ours, name) == pytest.approx(ref.params_[name], rel=PARAM_RTOL), name
    # Fader, Hardie & Lee, "RFM and CLV" (2005) / Hardie's note 025: p 6.25, q 3.74, v 15.44
    assert (ours.p, ours.q, ours.v) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)
    got = expected_order_value(ours, x, m)
    want = ref.conditional_expected_average_profit(d["frequency"], d["monetary_value"]).to_numpy()
    assert np.abs(got / want - 1).max() < EXPECTED_RTOL


@pytest.mark.parametrize("cutoff", ["1997-10-01", "1997-10-01 13:07:21.123456789", "1998-07-01"])
def test_summary_is_lifetimes_summary_of_the_orders_before_the_cutoff(cdnow, cutoff):
    cutoff = pd.Timestamp(cutoff)
    customers = sorted(cdnow["customer_id"].unique())
    s = summarise(_view(cdnow, customers, cutoff))
    ref = _lifetimes_summary(cdnow, customers, cutoff)
    has = ref["frequency"].notna().to_numpy()
    assert np.array_equal(np.isfinite(s.frequency), has), "customers with an order"
    np.testing.assert_array_equal(s.frequency[has], ref["frequency"].to_numpy()[has])
    np.testing.assert_array_equal(s.recency[has], ref["recency"].to_numpy()[has])
    np.testing.assert_array_equal(s.age[has], ref["T"].to_numpy()[has])
    rep = s.frequency > 0
    np.testing.assert_allclose(s.monetary[rep], ref["monetary_value"].to_numpy()[rep], rtol=1e-12)
    assert np.isnan(s.monetary[has & ~rep]).all(), "no repeat purchase: no mean repeat order value"


def test_features_match_lifetimes_on_cdnow_transactions(cdnow):
    customers = sorted(cdnow["customer_id"].unique())
    got = _features(cdnow, customers, CDNOW_CUTOFF)
    ref = _lifetimes_summary(cdnow, customers, CDNOW_CUTOFF)
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(ref["frequency"], ref["recency"], ref["T"])
    x, tx, T = (ref[c].to_numpy() for c in ("frequency", "recency", "T"))
    alive = bgf.conditional_probability_alive(x, tx, T)
    n = bgf.conditional_expected_number_of_purchases_up_to_time(H, x, tx, T)
    rep = ref[(ref["frequency"] > 0) & (ref["monetary_value"] > 0)]  # CDNOW has $0 orders
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    value = n * ggf.conditional_expected_average_profit(ref["frequency"], ref["monetary_value"]).to_numpy()
    assert np.abs(got[NAMES[0]].to_numpy() - alive).max() < P_ALIVE_ATOL
    assert np.abs(got[NAMES[1]].to_numpy() / n - 1).max() < EXPECTED_RTOL
    assert np.abs(got[NAMES[2]].to_numpy() / value - 1).max() < EXPECTED_RTOL


def test_subsample_fit_is_fixed_by_the_seed(cdnow):
    customers = sorted(cdnow["customer_id"].unique())
    small = BtydConfig(fit_sample=3000, seed=1)
    a = _features(cdnow, customers, CDNOW_CUTOFF, small)
    b = _features(cdnow, customers, CDNOW_CUTOFF, small)
    c = _features(cdnow, customers, CDNOW_CUTOFF, small.model_copy(update={"seed": 2}))
    full = _features(cdnow, customers, CDNOW_CUTOFF)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a[NAMES[0]], c[NAMES[0]], rtol=0, atol=1e-9), "another seed, another sample"
    # 3,000 of 23,570 customers already give P(alive) close to the full fit's
    assert np.abs(a[NAMES[0]] - full[NAMES[0]]).max() < 0.1


# --- the summary by hand ----------------------------------------------------------------------


def test_summary_by_hand():
    orders = _orders([
        ("A", "2024-01-01 09:00", 10.0), ("A", "2024-02-01", 20.0), ("A", "2024-02-01 18:00", 5.0),
        ("A", "2024-03-02", 30.0),
        ("B", "2024-03-31 23:59", 7.0),
        ("C", "2024-04-01", 99.0),  # at the cutoff: not seen
    ])
    s = summarise(_view(orders, ["A", "B", "C", "D"], pd.Timestamp("2024-04-01")))
    # A: purchase days 01-01, 02-01 (two orders, one day), 03-02; T = 2024-04-01 - 2024-01-01
    np.testing.assert_array_equal(s.frequency, [2, 0, np.nan, np.nan])
    np.testing.assert_array_equal(s.recency, [61, 0, np.nan, np.nan])
    np.testing.assert_array_equal(s.age, [91, 1, np.nan, np.nan])
    np.testing.assert_array_equal(s.monetary, [(25 + 30) / 2, np.nan, np.nan, np.nan])


@pytest.mark.parametrize("cutoff", ["2024-04-01", "2024-04-01 00:00:00.000000001",
                                    "2024-04-01 13:07:21.123456789", "2024-04-01 23:59:59.999999999"])
def test_calendar_days_are_exact_for_midnight_orders_whatever_the_cutoff_time(cutoff):
    """The view keeps ages as float days: an order at midnight must not slip to the day before."""
    cutoff = pd.Timestamp(cutoff)
    days_back = np.random.default_rng(0).integers(1, 20_000, 3000)
    ts = cutoff.normalize() - pd.to_timedelta(days_back, unit="D")
    ts = ts.append(ts + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1))  # a ms before midnight
    ids = [f"k{i}" for i in range(len(ts))]
    orders = pd.DataFrame({"customer_id": ids, "order_ts": ts, "amount": 1.0})
    s = summarise(_view(orders, ids, cutoff))
    want = (cutoff.normalize() - ts.normalize()).days.to_numpy()
    wrong = int((s.age != want).sum())
    assert wrong == 0, f"{wrong} of {len(ids)} orders counted on the wrong day"


def test_summary_does_not_rely_on_the_order_of_events_within_a_customer():
    view = _view(_population(), [f"c{i:02d}" for i in range(40)], PIT_CUTOFF)
    shuffle = np.random.default_rng(0).permutation(len(view))
    shuffle = shuffle[np.argsort(view.codes[shuffle], kind="stable")]  # customers still grouped
    assert not np.array_equal(shuffle, np.arange(len(view))), "the events should be out of time order"
    mixed = EventView(view.codes[shuffle], view.age[shuffle], view.n,
                      {"amount": view.col("amount")[shuffle]}, view.cutoff_ns)
    want, got = summarise(view), summarise(mixed)
    for name in ("frequency", "recency", "age", "monetary"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12, err_msg=name)


# --- point in time ----------------------------------------------------------------------------

PIT_CUTOFF = pd.Timestamp("2024-07-01")


def _population(n: int = 40) -> pd.DataFrame:
    """Hand-made buyers: customer i buys every (5 + i % 9) weeks from a start that varies, some
    stop early; enough repeat buyers with different habits for both models to be identified."""
    rows = []
    for i in range(n):
        start = pd.Timestamp("2023-01-02") + pd.Timedelta(days=7 * (i % 13))
        gap = pd.Timedelta(weeks=5 + i % 9)
        stop = PIT_CUTOFF - pd.Timedelta(days=30 * (i % 7) ** 2)
        ts = start
        k = 0
        while ts < stop:
            rows.append((f"c{i:02d}", ts, 10.0 + (i % 5) * 7 + k % 3))
            ts += gap
            k += 1
    return _orders(rows)


def test_orders_at_or_after_the_cutoff_change_nothing():
    base = _population()
    customers = sorted(base["customer_id"].unique()) + ["late", "never"]
    before = _features(base, customers, PIT_CUTOFF)
    later = _orders([
        ("c01", PIT_CUTOFF, 500.0),  # exactly at the cutoff
        ("c01", PIT_CUTOFF + pd.Timedelta(days=3), 50.0),
        ("c05", PIT_CUTOFF + pd.Timedelta(hours=1), 70.0),
        ("late", PIT_CUTOFF + pd.Timedelta(days=10), 20.0),  # first order after the cutoff
    ])
    after = _features(pd.concat([base, later], ignore_index=True), customers, PIT_CUTOFF)
    pd.testing.assert_frame_equal(after, before)
    assert before.loc[["late", "never"]].isna().all().all(), "no order before the cutoff: NaN"
    assert before.drop(index=["late", "never"]).notna().all().all()


def test_the_same_order_just_before_the_cutoff_does_change_the_features():
    """The control of the test above: the change is visible when it falls before the cutoff."""
    base = _population()
    customers = sorted(base["customer_id"].unique())
    before = _features(base, customers, PIT_CUTOFF)
    just_before = _orders([("c01", PIT_CUTOFF - pd.Timedelta(hours=1), 500.0)])
    moved = _features(pd.concat([base, just_before], ignore_index=True), customers, PIT_CUTOFF)
    for name in NAMES:
        assert moved.loc["c01", name] != before.loc["c01", name], name


# --- degenerate inputs ------------------------------------------------------------------------


def _single_orders() -> pd.DataFrame:
    return _orders([(f"s{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=i), 10.0)
                    for i in range(50)])


def _identical() -> pd.DataFrame:
    return _orders([(f"i{i}", day, 10.0 + i) for i in range(50)
                    for day in ("2024-01-10", "2024-02-10", "2024-05-01")])


DEGENERATE = [
    # (case, orders, customers, words the warning must contain)
    ("no orders", _orders([]), ["a", "b"], "0 customers with an order"),
    ("no customers", _orders([]), [], "0 customers with an order"),
    ("no repeat buyers", _single_orders(), [f"s{i}" for i in range(50)], "0 repeat buyers"),
    ("one customer", _orders([("a", "2024-01-01", 5.0), ("a", "2024-03-01", 7.0)]), ["a"],
     "1 customers with an order"),
    ("identical histories", _identical(), [f"i{i}" for i in range(50)], "same history"),
]


@pytest.mark.parametrize("case,orders,customers,words", DEGENERATE, ids=[c[0] for c in DEGENERATE])
def test_degenerate_inputs_give_nan_and_a_warning(case, orders, customers, words, caplog):
    with caplog.at_level(logging.WARNING, logger="features.families.btyd"):
        got = _features(orders, customers, PIT_CUTOFF)
    assert len(got) == len(customers)
    assert got.isna().all().all(), f"{case}: every BTYD feature should be NaN"
    assert words in caplog.text, f"{case}: warning should say why, got {caplog.text!r}"


def test_one_customer_with_the_minimums_lowered_is_still_not_identified(caplog):
    orders = _orders([("a", "2024-01-01", 5.0), ("a", "2024-03-01", 7.0)])
    config = BtydConfig(min_customers=1, min_repeat_buyers=1)
    with caplog.at_level(logging.WARNING, logger="features.families.btyd"):
        got = _features(orders, ["a"], PIT_CUTOFF, config)
    assert got.isna().all().all()
    assert "same history" in caplog.text


def test_equal_order_values_leave_the_value_nan_but_keep_p_alive(caplog):
    orders = _population()
    orders["amount"] = 25.0  # every mean order value the same: Gamma-Gamma is not identified
    customers = sorted(orders["customer_id"].unique())
    with caplog.at_level(logging.WARNING, logger="features.families.btyd"):
        got = _features(orders, customers, PIT_CUTOFF)
    assert got[NAMES[0]].notna().all() and got[NAMES[1]].notna().all()
    assert got[NAMES[2]].isna().all()
    assert "Gamma-Gamma not fitted" in caplog.text


@pytest.mark.parametrize("x,tx,T,error", [
    ([0, 0, 0], [0, 0, 0], [5, 9, 30], BtydFitError),        # nobody came back
    ([], [], [], BtydFitError),
    ([2, 0], [10, 0], [5, 9], ValueError),                   # recency after the age
    ([1.5, 0], [3, 0], [5, 9], ValueError),                  # not a count
    ([0, 1], [4, 3], [5, 9], ValueError),                    # recency without a repeat purchase
])
def test_fit_bgnbd_refuses_what_it_cannot_fit(x, tx, T, error):
    with pytest.raises(error):
        fit_bgnbd(np.array(x, float), np.array(tx, float), np.array(T, float))


def test_fit_gamma_gamma_refuses_without_repeat_buyers():
    with pytest.raises(BtydFitError):
        fit_gamma_gamma(np.array([0.0, 0.0]), np.array([np.nan, np.nan]))


def test_expected_orders_stay_finite_where_the_textbook_formula_overflows():
    """a = 1 (0/0 in eq. 10), heavy buyers and a ten-year horizon: lifetimes gives inf/NaN here."""
    x = np.array([0.0, 1, 5, 40, 200])
    tx = np.array([0.0, 20, 300, 690, 699])
    T = np.full(5, 700.0)
    at_one = expected_orders(BgNbdParams(0.25, 30.0, 1.0, 2.4), 3650, x, tx, T)
    near = expected_orders(BgNbdParams(0.25, 30.0, 1.0 + 1e-6, 2.4), 3650, x, tx, T)
    assert np.isfinite(at_one).all()
    np.testing.assert_allclose(at_one, near, rtol=1e-4)
    assert (at_one > 0).all()


# --- direction --------------------------------------------------------------------------------


# Each row: two customers differing in one respect, the feature that must be lower for the first.
OVERDUE = [("1997-01-05", 20.0), ("1997-01-20", 20.0), ("1997-02-04", 20.0), ("1997-02-19", 20.0)]
RECENT = [("1997-01-05", 20.0), ("1997-04-20", 20.0), ("1997-07-04", 20.0), ("1997-09-19", 20.0)]
DIRECTION = [
    ("long overdue vs recent buyer, same first purchase and purchase count: P(alive)",
     "overdue", "recent", NAMES[0]),
    ("long overdue vs recent buyer: expected orders", "overdue", "recent", NAMES[1]),
    ("long overdue vs recent buyer: expected value", "overdue", "recent", NAMES[2]),
    ("fewer repeat purchases over the same span and last purchase: expected orders",
     "sparse", "recent", NAMES[1]),
    ("smaller orders, same timing: expected value", "small", "big", NAMES[2]),
]
PROBES = {
    "overdue": OVERDUE,
    "recent": RECENT,
    "sparse": [RECENT[0], RECENT[-1]],
    "small": [(day, 10.0) for day, _ in RECENT],
    "big": [(day, 90.0) for day, _ in RECENT],
    "once": [("1997-03-01", 15.0)],
    "gone": [("1997-01-05", 15.0), ("1997-01-06", 15.0)],
}


@pytest.fixture(scope="module")
def probes(cdnow) -> pd.DataFrame:
    """The probe customers' features, scored among CDNOW's customers at the CDNOW cutoff."""
    rows = [(c, ts, amount) for c, orders in PROBES.items() for ts, amount in orders]
    frame = pd.concat([cdnow, _orders(rows)], ignore_index=True)
    customers = sorted(cdnow["customer_id"].unique()) + list(PROBES)
    return _features(frame, customers, CDNOW_CUTOFF).loc[list(PROBES)]


@pytest.mark.parametrize("case,low,high,feature", DIRECTION, ids=[d[0] for d in DIRECTION])
def test_direction(probes, case, low, high, feature):
    lo, hi = probes.loc[low, feature], probes.loc[high, feature]
    assert lo < hi, f"{case}: {feature} {lo:.4f} !< {hi:.4f}"


def test_p_alive_is_one_without_repeat_purchase_and_low_after_a_long_silence(probes):
    assert probes.loc["once", NAMES[0]] == 1.0, "BG/NBD: nobody drops out before a repeat purchase"
    assert probes.loc["gone", NAMES[0]] < 0.5


# --- house rules ------------------------------------------------------------------------------


def test_specs_say_what_the_numbers_mean():
    view = _view(_population(), ["c00", "c01"], PIT_CUTOFF)
    sink = FeatureSink()
    add_btyd(sink, view, np.zeros(view.n), H, BtydConfig())
    specs = {s.name: s for s in sink.specs}
    assert {s.family for s in sink.specs} == {"btyd"}
    assert specs[NAMES[0]].say(0.834) == "probability of still being an active buyer: 0.83"
    assert specs[NAMES[1]].say(1.5) == f"1.5 orders expected in the next {H} days"
    assert specs[NAMES[2]].say(42.0) == f"expected to spend 42 in the next {H} days"


def test_tenure_must_cover_the_same_customers():
    view = _view(_population(), ["c00", "c01"], PIT_CUTOFF)
    with pytest.raises(ValueError, match="tenure_days"):
        add_btyd(FeatureSink(), view, np.zeros(3), H, BtydConfig())


def test_features_package_does_not_import_lifetimes():
    code = ("import sys, features.families.btyd; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'lifetimes', 'autograd'}); "
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

"""Reading a sent campaign: realised effects with intervals, calibration, verdicts, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.offers.catalogue import load_catalogue
from scoring.offers.design import (
    DISPROVEN,
    PROVEN,
    UNKNOWN,
    CampaignError,
    DesignSettings,
    assignment_frame,
    design_campaign,
)
from scoring.offers.policy import eligible, options
from scoring.offers.readout import (
    EVIDENCE_COLUMNS,
    evidence_table,
    read_campaign,
    uplift_calibration,
)
from tests.scoring.sample_truth import truth_world


def test_a_readout_of_a_simulated_sent_campaign_recovers_the_true_effect(sample_dir):
    """Campaigns planned on the sample's customers, outcomes drawn from ``_truth``: each offer's
    95% interval holds its true mean cut on the customers it targeted in most seeds, and over
    the seeds the realised cuts average to the truth (the intervals are wide on 3,000 customers:
    the average is what tells a right readout from one that reads nothing)."""
    catalogue = load_catalogue()
    w = truth_world(sample_dir, catalogue)
    c = w.customers()
    effects = {o: w.effects[:, j] - 0.2 * w.base for j, o in enumerate(catalogue.ids)}
    opts = options(c, effects, catalogue)
    ok = np.column_stack([eligible(o, c) for o in catalogue.offers])
    status = {"discount_10": PROVEN, "service_call": UNKNOWN, "loyalty_bonus": UNKNOWN}
    held, total, offers_read = 0, 0, set()
    found: dict[str, list[tuple[float, float]]] = {}
    for seed in range(40):
        d = design_campaign(opts, ok, w.base, catalogue, 0.3 * len(w.base) * 10.0, status,
                            DesignSettings(test_share=0.2), seed)
        frame = assignment_frame(d, w.ids, catalogue, opts, w.value, "c", "2026-01-01")
        action = np.where(d.treated, d.offer, -1)
        y = w.outcome(np.random.default_rng(1000 + seed), action)
        pos = pd.Index(w.ids).get_indexer(frame["customer_id"])
        readout = read_campaign(frame.assign(outcome=y[pos]), catalogue).set_index("offer_id")
        for oid, r in readout.iterrows():
            j = catalogue.ids.index(oid)
            targeted = d.offer == j
            if (targeted & ~d.treated).sum() < 20:
                continue
            truth = -w.effects[targeted, j].mean()
            held += r["ci_low"] <= truth <= r["ci_high"]
            found.setdefault(oid, []).append((r["realised_cut"], truth))
            total += 1
            offers_read.add(oid)
    assert offers_read == set(catalogue.ids), "every offer (policy and test slice) was read"
    print(f"readout coverage: {held}/{total} intervals hold the true cut")
    assert total >= 80 and held / total >= 0.88, f"{held}/{total} intervals hold the truth"
    for oid, pairs in found.items():
        realised, truth = np.array(pairs).T
        error = realised.mean() - truth.mean()
        assert abs(error) < 3 * realised.std(ddof=1) / np.sqrt(len(realised)), (oid, error)
    discount = np.array(found["discount_10"]).T
    assert discount[1].mean() > 3 * discount[0].std(ddof=1) / np.sqrt(discount.shape[1]), \
        "the policy's offer truly works here: a readout of zero would fail the check above"


def _campaign(rng, n, base, cut, hold_share=0.5, offer="discount_10"):
    treated = rng.random(n) >= hold_share
    y = (rng.random(n) < base - cut * treated).astype(float)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "offer_id": offer,
                         "treated": treated, "outcome": y, "customer_value": 100.0,
                         "predicted_churn_cut": cut})


def _counts(treated: int, treated_churned: int, held: int, held_churned: int) -> pd.DataFrame:
    """A campaign with exactly these counts (no sampling noise)."""
    t = np.r_[np.ones(treated, bool), np.zeros(held, bool)]
    y = np.r_[np.arange(treated) < treated_churned, np.arange(held) < held_churned].astype(float)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(t))],
                         "offer_id": "discount_10", "treated": t, "outcome": y,
                         "customer_value": 100.0, "predicted_churn_cut": 0.1})


@pytest.mark.parametrize("counts,expected", [
    ((2_000, 360, 2_000, 600), PROVEN),  # 30% -> 18%: a cut of 0.12, interval above zero
    ((10_000, 2_000, 10_000, 2_000), DISPROVEN),  # no cut, precisely: below the 0.03 worth having
    ((10_000, 2_300, 10_000, 2_000), DISPROVEN),  # it harms
    ((100, 18, 100, 20), UNKNOWN),  # 0.02 +/- 0.11: too few customers to tell
])
def test_the_verdict_follows_the_interval(counts, expected):
    r = read_campaign(_counts(*counts), load_catalogue(), min_effect=0.03).iloc[0]
    t, tc, h, hc = counts
    assert r["realised_cut"] == pytest.approx(hc / h - tc / t)
    assert r["verdict"] == expected, r.to_dict()
    assert r["ci_low"] < r["realised_cut"] < r["ci_high"]
    assert r["realised_net_per_offer"] == pytest.approx(r["realised_cut"] * 100.0 - 10.0)


def test_arms_with_different_hold_out_shares_are_not_mixed():
    """A policy arm (risky customers, 10% held out) and a test slice (safer ones, 50/50): pooling
    them naively confuses risk with the offer; the readout compares within each arm."""
    rng = np.random.default_rng(2)
    a = _campaign(rng, 20_000, 0.40, 0.05, hold_share=0.1).assign(arm="policy")
    b = _campaign(rng, 20_000, 0.05, 0.05, hold_share=0.5).assign(arm="test")
    frame = pd.concat([a, b], ignore_index=True)
    r = read_campaign(frame, load_catalogue()).iloc[0]
    assert r["ci_low"] <= 0.05 <= r["ci_high"]
    naive = frame.loc[~frame["treated"], "outcome"].mean() - frame.loc[frame["treated"],
                                                                        "outcome"].mean()
    assert not r["ci_low"] <= naive <= r["ci_high"], "the naive pooled cut is far off"


def test_uplift_calibration_by_decile_follows_the_predicted_cut():
    rng = np.random.default_rng(4)
    n = 60_000
    cut = rng.uniform(0.0, 0.2, n)
    treated = rng.random(n) < 0.5
    y = (rng.random(n) < 0.35 - cut * treated).astype(float)
    frame = pd.DataFrame({"offer_id": "discount_10", "treated": treated, "outcome": y,
                          "predicted_churn_cut": cut})
    cal = uplift_calibration(frame)
    assert len(cal) == 10 and cal["customers"].sum() == n
    assert (np.abs(cal["realised_cut"] - cal["predicted_cut"]) < 4 * cal["cut_se"]).all()
    assert np.corrcoef(cal["predicted_cut"], cal["realised_cut"])[0, 1] > 0.9
    flat = uplift_calibration(frame.assign(predicted_churn_cut=rng.permutation(cut)))
    assert np.ptp(flat["realised_cut"]) < np.ptp(cal["realised_cut"]) / 2, \
        "a prediction unrelated to the effect shows no slope"


def test_the_evidence_table_is_what_the_next_training_reads():
    r = read_campaign(_campaign(np.random.default_rng(0), 4_000, 0.3, 0.12), load_catalogue())
    table = evidence_table(r, "spring", pd.Timestamp("2026-03-01"))
    assert tuple(table.columns) == EVIDENCE_COLUMNS and table["verdict"].iloc[0] == PROVEN


@pytest.mark.parametrize("change,words", [
    (lambda f: f.drop(columns="treated"), ["treated", "hold-out flag"]),
    (lambda f: f.assign(treated=True), ["no hold-out", "discount_10"]),
    (lambda f: f.assign(offer_id="free_phone"), ["unknown to the catalogue", "free_phone"]),
    (lambda f: f.assign(outcome=2.0), ["outcome", "0 or 1"]),
    (lambda f: f.drop(columns="outcome"), ["outcome"]),
])
def test_bad_outcome_tables_are_named(change, words):
    frame = change(_campaign(np.random.default_rng(0), 100, 0.3, 0.1))
    with pytest.raises(CampaignError) as err:
        read_campaign(frame, load_catalogue())
    for w in words:
        assert w in str(err.value)

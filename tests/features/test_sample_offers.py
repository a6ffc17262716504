"""The sample's past campaigns: the uniform quarterly default and the programme style."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import BadInput
from features.sample import SampleSpec, generate
from features.sample.offers import PROGRAMME_HOLD_OUT


@pytest.fixture(scope="module")
def programme():
    """A sample whose campaigns are run as a programme."""
    return generate(SampleSpec(customers=4_000, months=12, seed=3, campaigns="programme"))


def test_an_unknown_campaign_style_or_an_empty_block_is_refused_by_name():
    with pytest.raises(BadInput, match="--campaigns must be one of quarterly, programme"):
        SampleSpec(campaigns="weekly")
    with pytest.raises(BadInput, match="--block must be at least 1"):
        SampleSpec(block=0)


def _ips_identity(offers: dict) -> dict:
    """Mean of 1[action = a] / propensity over the selected customers, per action, and four of
    its standard errors: 1 for every action when the recorded propensities are the true ones."""
    treated, offer, p = offers["treated"], offers["offer"], offers["propensity"]
    terms = {"none": ~treated / p}
    terms.update({int(j): (treated & (offer == j)) / p for j in np.unique(offer)})
    return {a: (float(t.mean()), 4 * float(t.std()) / np.sqrt(len(t))) for a, t in terms.items()}


def test_programme_campaigns_record_the_propensities_they_used(programme):
    o = programme.tables["offers"]
    assert (~o["treated"]).mean() == pytest.approx(PROGRAMME_HOLD_OUT, abs=0.02)
    for action, (mean, tolerance) in _ips_identity(o).items():
        assert mean == pytest.approx(1.0, abs=tolerance), action
    assert o["propensity"][o["treated"]].std() > 0.05, "the offer depends on the customer"


def test_programme_campaigns_pick_riskier_customers_and_pick_them_again(programme):
    o = programme.tables["offers"]
    cp = programme.churn_probability
    hazard = pd.DataFrame({"cust": cp["cust"], "month": cp["month"], "p": cp["probability"]})
    month = (pd.to_datetime(o["ts"]).to_period("M").to_timestamp().to_numpy("datetime64[ns]")
             .view(np.int64))
    picked = pd.DataFrame({"cust": o["cust"], "month": month}).merge(hazard, on=["cust", "month"])
    assert picked["p"].mean() > 1.3 * hazard[hazard["month"].isin(month)]["p"].mean()
    sent = pd.DataFrame({"cust": o["cust"], "ts": o["ts"]})
    assert sent["cust"].duplicated().mean() > 0.1, "repeat campaigns reach customers again"
    treated = sent[o["treated"]].sort_values(["cust", "ts"])
    gap = treated.groupby("cust")["ts"].diff().dropna() / (86_400 * 10**9)
    assert (gap >= 80).all(), "nobody is picked while an offer is in force"


def test_the_default_campaigns_are_uniform_and_say_so():
    o = generate(SampleSpec(customers=1_500, months=9, seed=5)).tables["offers"]
    assert set(np.round(o["propensity"], 4)) == {0.2, round(0.8 / 3, 4)}
    assert np.array_equal(o["propensity"] == 0.2, ~o["treated"])
    for action, (mean, tolerance) in _ips_identity(o).items():
        assert mean == pytest.approx(1.0, abs=tolerance), action

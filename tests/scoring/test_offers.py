"""Offers: the catalogue's checks, the policy's rules, campaign allocation and the uplift estimator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from scoring.offers.campaign import allocate
from scoring.offers.catalogue import CatalogueError, UpliftSettings, load_catalogue, parse_catalogue
from scoring.offers.policy import NO_OFFER, Customers, decide, options
from scoring.offers.uplift import LEARNT, OfferEffectModel, UpliftModels, offer_effects
from scoring.offers.value import ValueConfig, customer_value
from training.effect_fit import fit_offer
from training.uplift import (
    CampaignData,
    effect_columns,
    fit_uplift,
    gone_outcome,
    qini,
)


def _catalogue(**changes):
    data = yaml.safe_load(load_catalogue.__globals__["DEFAULT_CATALOGUE"].read_text())
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return data


def test_the_default_catalogue_is_valid_and_matches_the_sample():
    from features.sample.mechanics import OFFER_IDS

    catalogue = load_catalogue()
    assert catalogue.ids == list(OFFER_IDS)


BAD_CATALOGUES = [
    ("negative cost", {"offers.0.cost": -5}, ["offers[0] (discount_10).cost", "greater than"]),
    ("missing prior", {"offers.1.prior_effect": KeyError}, ["offers[1] (service_call).prior_effect",
                                                           "required"]),
    ("risk range upside down", {"offers.0.eligibility": {"risk_range": [0.8, 0.2]}},
     ["risk_range"]),
    ("unknown reason", {"offers.2.addresses": ["weather"]}, ["offers[2] (loyalty_bonus).addresses"]),
    ("duplicated id", {"offers.2.id": "discount_10"}, ["repeated", "discount_10"]),
    ("unknown field", {"offers.0.colour": "red"}, ["offers[0] (discount_10).colour",
                                                   "not permitted"]),
    ("negative cap", {"offers.0.cap_per_campaign": -1}, ["cap_per_campaign"]),
    ("no offers", {"offers": []}, ["offers"]),
    ("bad contract rule", {"offers.0.eligibility": {"contract": "sometimes"}}, ["contract"]),
    ("negative evidence_z", {"evidence_z": -1}, ["evidence_z", "greater than or equal"]),
    ("unknown uplift outcome", {"uplift.outcome": "churn"}, ["uplift.outcome", "'gone'"]),
    ("zero gone window", {"uplift.gone_after_days": 0}, ["uplift.gone_after_days", "greater than"]),
    ("negative ridge", {"uplift.ridge_effect": -1.0}, ["uplift.ridge_effect"]),
    ("unknown uplift setting", {"uplift.window": 3}, ["uplift.window", "not permitted"]),
]


@pytest.mark.parametrize("case,change,words", BAD_CATALOGUES, ids=[b[0] for b in BAD_CATALOGUES])
def test_each_kind_of_invalid_catalogue_entry_is_named(case, change, words):
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(_catalogue(**change), "my-offers.yaml")
    for word in words:
        assert word in str(err.value), f"{case}: {word!r} not in {err.value}"
    assert "my-offers.yaml" in str(err.value)


def test_unreadable_catalogue_files(tmp_path):
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("offers: [unclosed")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(tmp_path / "bad.yaml")


# --- the policy on hand-built customers -------------------------------------------------------


def _customers(p, value, days=None, **attrs):
    n = len(p)
    return Customers(np.asarray(p, float), np.asarray(value, float),
                     np.full(n, np.nan) if days is None else np.asarray(days, float), **attrs)


def _effects(rows):
    """rows: per customer, the change in churn probability of each default offer."""
    arr = np.asarray(rows, float)
    return {oid: arr[:, j] for j, oid in enumerate(load_catalogue().ids)}


def test_no_offer_when_every_net_value_is_negative():
    catalogue = load_catalogue()
    c = _customers([0.5], [20.0])  # worth 20: no cut in churn pays a cost of 5 or more here
    decisions = decide(c, _effects([[-0.1, -0.2, -0.2]]), catalogue, {})
    assert decisions[0].offer_id is None and "would save" in decisions[0].why


def test_the_best_positive_offer_is_chosen_with_its_explanation():
    catalogue = load_catalogue()
    c = _customers([0.5], [1000.0])
    d = decide(c, _effects([[-0.05, -0.10, -0.01]]), catalogue, {"service_call": LEARNT})[0]
    # net: discount 0.05*1000-10=40, service 0.10*1000-15=85, loyalty 0.01*1000-5=5
    assert d.offer_id == "service_call" and d.expected_net_value == pytest.approx(85)
    assert d.effect_source == LEARNT and d.addresses == ("support",)
    assert "expected net value 85.00" in d.why


def test_a_harmful_effect_is_never_chosen_even_if_it_looked_profitable():
    catalogue = load_catalogue()
    c = _customers([0.5, 0.5], [1000.0, 1000.0])
    decisions = decide(c, _effects([[0.2, 0.3, 0.1], [0.2, -0.02, 0.1]]), catalogue, {})
    assert decisions[0].offer_id is None and "lower this customer's churn" in decisions[0].why
    assert decisions[1].offer_id == "service_call"


def test_eligibility_and_the_contact_cool_down_are_respected():
    catalogue = parse_catalogue(_catalogue(**{
        "offers.1.eligibility": {"risk_range": [0.1, 1.0], "segments": ["business"],
                                 "min_customer_value": 500},
        "offers.0.eligibility": {"contract": "no_contract", "risk_range": [0.1, 1.0]},
        "offers.2.eligibility": {"risk_range": [0.1, 1.0]}}))
    c = _customers([0.5, 0.5, 0.05, 0.5], [1000, 100, 1000, 1000], days=[np.nan, np.nan, np.nan, 10],
                   segment=np.array(["business", "business", "business", "business"]),
                   has_contract=np.array([1.0, 0.0, 0.0, 0.0]))
    decisions = decide(c, _effects([[-0.3, -0.2, 0.0]] * 4), catalogue, {})
    assert decisions[0].offer_id == "service_call", "discount is for non-contract customers only"
    assert decisions[1].offer_id == "discount_10", "service call needs a value of 500"
    assert decisions[2].offer_id is None, "risk 0.05 is below every offer's risk range"
    assert decisions[3].offer_id is None and "cool-down" in decisions[3].why


def test_all_offers_at_once_equal_each_offers_own_checks():
    """``options`` checks every offer's risk range and value on the whole block at once: the
    same net values as each offer's ``eligible`` customers one offer at a time."""
    from scoring.offers.policy import eligible

    catalogue = parse_catalogue(_catalogue(**{
        "offers.1.eligibility": {"risk_range": [0.1, 0.9], "segments": ["business"],
                                 "min_customer_value": 50},
        "offers.0.eligibility": {"contract": "no_contract", "risk_range": [0.2, 1.0]},
        "offers.2.eligibility": {"risk_range": [0.3, 0.6], "min_customer_value": 5}}))
    rng = np.random.default_rng(8)
    n = 400
    p = np.where(rng.random(n) < 0.1, 0.3, rng.uniform(0, 1, n))  # some right on an edge
    p[:5] = np.nan
    c = _customers(p, rng.choice([0.0, 5.0, 50.0, 400.0, np.nan], n),
                   days=rng.choice([np.nan, 10.0, 100.0], n),
                   segment=rng.choice(["business", "home"], n),
                   has_contract=rng.choice([0.0, 1.0, np.nan], n))
    effects = _effects(rng.normal(-0.05, 0.05, (n, 3)))
    got = options(c, effects, catalogue)
    for j, offer in enumerate(catalogue.offers):
        r = -effects[offer.id]
        ok = eligible(offer, c) & ~got.cooling & (r > 0)
        want = np.where(ok, r * c.value - offer.cost, -np.inf)
        assert np.array_equal(got.net[:, j], want), offer.id
        assert np.array_equal(got.reduction[:, j], r), offer.id


def test_the_eligibility_rule_by_hand_for_a_block_and_for_each_offer():
    """One rule for a block of customers and for one offer: risk range (ends included, in the
    customers' own precision), minimum value (an integer value against a fractional minimum as
    the numbers are), segment, plan and contract where the customer's attribute is known."""
    from scoring.offers.policy import eligible, eligible_block

    catalogue = parse_catalogue(_catalogue(**{
        "offers.0.eligibility": {"contract": "no_contract", "risk_range": [0.2, 0.6],
                                 "plans": ["basic"]},
        "offers.1.eligibility": {"segments": ["business"], "min_customer_value": 49.5},
        "offers.2.eligibility": {"risk_range": [0.3, 0.6]}}))
    rows = [  # risk, value, segment, plan, contract, eligible for (discount, service, loyalty)
        (0.2, 100, "business", "basic", 0.0, (1, 1, 0)),    # at the discount's lower end
        (0.6, 100, "home", "basic", 1.0, (0, 0, 1)),        # upper end; contract; home
        (0.61, 100, "business", "basic", 0.0, (0, 1, 0)),   # above both ranges
        (0.3, 49, "business", "pro", np.nan, (0, 0, 1)),    # 49 < 49.5; unknown contract
        (0.3, 50, "business", "pro", 0.0, (0, 1, 1)),       # not the discount's plan
        (0.3, 50, None, None, 0.0, (0, 0, 1)),              # no segment or plan given
        (np.nan, 100, "business", "basic", 0.0, (0, 0, 0)),  # missing risk
    ]
    risk = np.array([r[0] for r in rows], dtype=np.float32)  # float32(0.6) > 0.6 as a double
    c = Customers(risk, np.array([r[1] for r in rows]), np.full(len(rows), np.nan),
                  segment=np.array([r[2] for r in rows], dtype=object),
                  plan=np.array([r[3] for r in rows], dtype=object),
                  has_contract=np.array([r[4] for r in rows]))
    want = np.array([r[5] for r in rows], dtype=bool)
    assert np.array_equal(eligible_block(c, catalogue.arrays), want)
    for j, offer in enumerate(catalogue.offers):
        assert np.array_equal(eligible(offer, c), want[:, j]), offer.id
    # an attribute the model does not have is left out of eligibility
    bare = Customers(risk, c.value, c.days_since_last_offer)
    assert eligible_block(bare, catalogue.arrays)[:4, 1].tolist() == [True, True, True, False]


def test_a_catalogue_works_out_its_arrays_once_and_still_compares_by_its_fields():
    """Costs and eligibility limits are built once per catalogue (not per request), read-only
    since every request shares them; equal catalogues stay equal once both have built them."""
    a, b = load_catalogue(), load_catalogue()
    c = _customers([0.5, 0.01], [1000.0, 1000.0])
    first = options(c, _effects([[-0.1, -0.1, -0.1]] * 2), a)
    assert options(c, _effects([[-0.2, -0.1, -0.1]] * 2), a).costs is first.costs is a.costs
    assert a.arrays is a.arrays and a.costs.tolist() == [10.0, 15.0, 5.0]
    assert a.arrays.risk_low.tolist() == [0.05, 0.10, 0.05]
    with pytest.raises(ValueError, match="read-only"):
        a.costs[0] = 0.0
    b.arrays  # noqa: B018 - built on both sides
    assert a == b and a is not b
    assert a != parse_catalogue(_catalogue(**{"offers.0.cost": 11.0}))


def test_a_copy_with_other_offers_gets_its_own_arrays():
    """``model_copy`` copies the built arrays with the fields: a copy with other offers must not
    price or screen its customers with the original's."""
    original = load_catalogue()
    c = _customers([0.5], [1000.0])
    effects = _effects([[-0.1, -0.1, -0.1]])
    assert np.isfinite(options(c, effects, original).net[0, 0])  # arrays built and cached
    first = original.offers[0].model_copy(update={
        "cost": 500.0, "eligibility": original.offers[0].eligibility.model_copy(
            update={"risk_range": (0.9, 1.0)})})
    copy = original.model_copy(update={"offers": (first, *original.offers[1:])})
    assert copy.costs.tolist() == [500.0, 15.0, 5.0]
    assert original.costs.tolist() == [10.0, 15.0, 5.0]
    assert np.isneginf(options(c, effects, copy).net[0, 0])  # risk 0.5 is outside 0.9-1.0
    assert np.isfinite(options(c, effects, original).net[0, 0])


def test_ties_go_to_the_catalogue_order_deterministically():
    catalogue = load_catalogue()
    c = _customers([0.5], [100.0])
    # discount 0.15*100-10 = 5, loyalty 0.10*100-5 = 5: a tie
    for _ in range(3):
        assert decide(c, _effects([[-0.15, 0.0, -0.10]]), catalogue, {})[0].offer_id == \
            "discount_10"


# --- campaign allocation ----------------------------------------------------------------------


def _brute_force(opts, catalogue, budget):
    n, m = opts.net.shape
    caps = [o.cap_per_campaign for o in catalogue.offers]
    best = 0.0
    for combo in itertools.product(range(-1, m), repeat=n):
        spend = sum(opts.costs[j] for j in combo if j >= 0)
        counts = [sum(1 for j in combo if j == k) for k in range(m)]
        if spend > budget + 1e-9 or any(c > cap for c, cap in zip(counts, caps, strict=True)):
            continue
        value = 0.0
        for i, j in enumerate(combo):
            if j >= 0:
                if not np.isfinite(opts.net[i, j]) or opts.net[i, j] <= 0:
                    break
                value += opts.net[i, j]
        else:
            best = max(best, value)
    return best


def _random_case(rng, n):
    catalogue = parse_catalogue(_catalogue(**{f"offers.{k}.cap_per_campaign": int(rng.integers(1, 4))
                                              for k in range(3)}))
    c = _customers(rng.uniform(0.1, 0.9, n), rng.uniform(20, 400, n))
    effects = _effects(-rng.uniform(-0.05, 0.3, (n, 3)))
    return catalogue, options(c, effects, catalogue)


def test_exact_allocation_equals_the_exhaustive_optimum_on_small_cases():
    rng = np.random.default_rng(1)
    for _ in range(25):
        catalogue, opts = _random_case(rng, 6)
        budget = float(rng.uniform(5, 60))
        plan = allocate(opts, catalogue, budget, method="exact")
        assert plan.net_value == pytest.approx(_brute_force(opts, catalogue, budget), abs=1e-6)
        assert plan.spend <= budget + 1e-9


def test_greedy_allocation_stays_close_to_the_optimum_and_never_breaks_a_limit():
    rng = np.random.default_rng(2)
    ratios = []
    for _ in range(40):
        catalogue, opts = _random_case(rng, 7)
        budget = float(rng.uniform(5, 60))
        greedy = allocate(opts, catalogue, budget)
        best = _brute_force(opts, catalogue, budget)
        assert greedy.spend <= budget + 1e-9
        for o in catalogue.offers:
            assert greedy.counts[o.id] <= o.cap_per_campaign
        assert (np.bincount(greedy.offer[greedy.offer != NO_OFFER], minlength=3) <= 3).all()
        ratios.append(greedy.net_value / best if best > 0 else 1.0)
    ratios = np.array(ratios)
    assert ratios.min() >= 0.5, "greedy fell below half of the optimum"
    assert np.mean(ratios) >= 0.9, f"greedy averages {np.mean(ratios):.2f} of the optimum"


def test_campaign_budget_and_caps_hold_at_scale():
    rng = np.random.default_rng(3)
    catalogue = load_catalogue()
    n = 5_000
    c = _customers(rng.uniform(0, 1, n), rng.lognormal(5, 1, n))
    opts = options(c, _effects(-rng.uniform(-0.05, 0.2, (n, 3))), catalogue)
    greedy, exact = allocate(opts, catalogue, 8_000), allocate(opts, catalogue, 8_000, "exact")
    for plan in (greedy, exact):
        assert plan.spend <= 8_000 + 1e-6
        assert plan.counts["service_call"] <= 20_000
    assert greedy.net_value >= 0.99 * exact.net_value, (greedy.net_value, exact.net_value)


# --- value and uplift -----------------------------------------------------------------------


def test_customer_value_by_hand():
    config = ValueConfig(margin=0.5, horizon_days=365, annual_discount_rate=0.0, window_days=365)
    assert customer_value(np.array([12.0]), np.array([50.0]), config)[0] == pytest.approx(300.0)
    assert customer_value(np.array([0.0]), np.array([np.nan]), config)[0] == 0.0


def test_the_offset_logistic_estimator_recovers_known_effects():
    rng = np.random.default_rng(4)
    n = 60_000
    p = rng.uniform(0.05, 0.6, n)
    z = rng.exponential(1.0, n)
    t = (rng.random(n) < 0.8).astype(float)
    logit = np.log(p / (1 - p)) + 0.1 + 0.2 * (z - 1) + t * (-0.1 - 0.5 * (z - 1))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    s = (z - 1)[:, None]
    c, main, a, inter = fit_offer(s, t, y, np.log(p / (1 - p)), UpliftSettings(ridge_effect=0,
                                                                              ridge_risk=0))
    assert (c, main[0], a, inter[0]) == pytest.approx((0.1, 0.2, -0.1, -0.5), abs=0.06)
    model = OfferEffectModel("x", LEARNT, c=c, a=a, main=list(main), inter=list(inter),
                             center=[1.0], spread=[1.0])
    effect = model.effect(p, z[:, None], 0.0)
    persuadable = z > np.quantile(z, 0.8)
    assert effect[persuadable].mean() < 0 and effect[persuadable].mean() < effect[~persuadable].mean()
    _, coef = qini(effect, t == 1, 1 - y)
    assert coef > 0, "ranking by the estimated effect must beat random targeting here"
    # the ridge pulls the varying part of the effect towards one average effect
    _, _, _, shrunk = fit_offer(s, t, y, np.log(p / (1 - p)), UpliftSettings(ridge_effect=1e6))
    assert abs(shrunk[0]) < 0.05 < abs(inter[0])


def test_an_effect_varies_only_with_the_features_of_the_reasons_it_addresses():
    catalogue = load_catalogue()
    families = ["rfm", "support", "voice", "engagement", "offers", "static"]
    reasons = UpliftSettings(effect_features="reasons")
    assert effect_columns(catalogue.offer("discount_10"), families, reasons).tolist() == [
        True, False, False, False, False, True]
    assert effect_columns(catalogue.offer("service_call"), families, reasons).tolist() == [
        False, True, True, False, False, True]
    assert effect_columns(catalogue.offer("discount_10"), families, UpliftSettings()).all()
    rng = np.random.default_rng(5)
    s, t = rng.normal(size=(4000, 3)), (rng.random(4000) < 0.5).astype(float)
    y = (rng.random(4000) < 0.3).astype(float)
    _, _, _, inter = fit_offer(s, t, y, np.zeros(4000), reasons, np.array([True, False, True]))
    assert inter[1] == 0.0 and inter[0] != 0.0


def test_uplift_models_round_trip(tmp_path):
    models = UpliftModels({"discount_10": OfferEffectModel(
        "discount_10", LEARNT, "n", 0.1, -0.2, [0.3, 0.0], [-0.3, 0.1], [1.0, 2.0], [1.0, 3.0],
        0.5, {"qini": 0.01})})
    back = UpliftModels.load(models.save(tmp_path / "u"))
    assert back.models["discount_10"] == models.models["discount_10"]
    x = np.array([[1.0, 2.0], [3.0, np.nan], [np.inf, -50.0]])
    assert np.array_equal(back.models["discount_10"].effect(np.full(3, 0.3), x, 0.1),
                          models.models["discount_10"].effect(np.full(3, 0.3), x, 0.1))
    assert np.isfinite(back.models["discount_10"].effect(np.full(3, 0.3), x, 0.1)).all()


def test_offers_sharing_a_standardisation_get_the_same_effects_as_one_by_one():
    rng = np.random.default_rng(8)
    x = rng.normal(2.0, 3.0, (500, 2))
    x[::7, 1] = np.nan
    p = rng.uniform(0.05, 0.6, 500)
    same = dict(center=[2.0, 2.0], spread=[3.0, 3.0])
    models = UpliftModels({
        "discount_10": OfferEffectModel("discount_10", LEARNT, c=0.1, a=-0.3, main=[0.1, 0.0],
                                        inter=[-0.2, 0.1], scale=0.7, **same),
        "service_call": OfferEffectModel("service_call", LEARNT, c=0.0, a=-0.1, main=[0.0, 0.2],
                                         inter=[0.0, -0.3], **same),
        "loyalty_bonus": OfferEffectModel("loyalty_bonus", LEARNT, c=0.0, a=-0.2,
                                          main=[0.0, 0.0], inter=[0.3, 0.0], center=[0.0, 1.0],
                                          spread=[1.0, 2.0])})
    catalogue = load_catalogue()
    together = models.effects(p, x, catalogue)
    for oid, model in models.models.items():
        alone = model.effect(p, x, catalogue.offer(oid).prior_effect)
        assert np.array_equal(together[oid], alone), oid
    assert not np.array_equal(together["discount_10"], together["service_call"])


def test_uplift_models_of_an_earlier_version_fall_back_to_the_prior(tmp_path):
    import json

    (tmp_path / "uplift.json").write_text(json.dumps({"discount_10": {
        "offer_id": "discount_10", "source": "learnt", "note": "", "reason": "price", "c": 0.1,
        "a": -0.2, "b": -0.3, "scale": 1.0, "metrics": {}}}))
    model = UpliftModels.load(tmp_path).models["discount_10"]
    assert model.source == "prior" and "earlier version" in model.note
    assert model.effect(np.array([0.4]), None, 0.25) == pytest.approx([-0.1])


def test_a_learnt_effect_needs_the_features_it_was_fitted_on():
    model = OfferEffectModel("x", LEARNT, c=0.0, a=-0.5, main=[0.0], inter=[0.0], center=[0.0],
                             spread=[1.0])
    with pytest.raises(ValueError, match="needs the 1 model features"):
        model.effect(np.array([0.3]), np.zeros((1, 2)), 0.0)


def test_no_offer_cuts_churn_risk_below_zero():
    """The campaign outcome is not the churn label: a large learnt cut is capped at the risk."""
    p = np.array([0.02, 0.3, 0.9])
    strong = OfferEffectModel("x", LEARNT, c=3.0, a=-6.0, main=[0.0], inter=[0.0], center=[0.0],
                              spread=[1.0])
    effect = strong.effect(p, np.zeros((3, 1)), 0.0)
    assert effect[0] == -0.02 and np.all(effect >= -p) and effect[2] > -0.9


def test_the_gone_outcome_follows_cancellations_and_signs_of_life():
    import pandas as pd

    from features.config import LabelConfig
    from features.crm import CrmData

    ts = pd.Timestamp
    customers = pd.DataFrame({
        "customer_id": ["ordered", "browsed", "quiet", "zero_days", "cancelled", "contract_quiet",
                        "mailed_only", "came_back_late"],
        "signup_date": ts("2023-01-01"),
        "cancel_date": [pd.NaT, pd.NaT, pd.NaT, pd.NaT, ts("2024-03-01"), pd.NaT, pd.NaT, pd.NaT],
        "has_contract": [False, False, False, False, True, True, False, False]})
    campaign = ts("2024-01-10")
    after = campaign + pd.Timedelta(days=100)  # inside (t + 90, t + 120]
    orders = pd.DataFrame({"customer_id": ["ordered", "came_back_late"],
                           "order_ts": [after, campaign + pd.Timedelta(days=125)],
                           "amount": [10.0, 10.0]})
    engagement = pd.DataFrame({
        "customer_id": ["browsed", "zero_days", "mailed_only", "mailed_only", "quiet"],
        "event_ts": [after, after, after, after, campaign + pd.Timedelta(days=30)],
        "event_type": ["web_session", "active_days", "email_sent", "email_open", "web_session"],
        "value": [np.nan, 0.0, np.nan, np.nan, np.nan]})
    crm = CrmData(customers, orders, engagement=engagement)
    frame = pd.DataFrame({"customer_id": customers["customer_id"], "campaign": campaign})
    gone = gone_outcome(crm, frame, LabelConfig(), UpliftSettings())
    assert dict(zip(frame["customer_id"], gone, strict=True)) == {
        "ordered": 0, "browsed": 0, "quiet": 1, "zero_days": 1, "cancelled": 1,
        "contract_quiet": 0, "mailed_only": 1, "came_back_late": 1}


def _campaigns(x: np.ndarray, p: np.ndarray, n_campaigns: int, seed: int):
    """Randomised campaigns on tiled training rows: the discount halves churn, loyalty does
    nothing."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = len(x)
    offer = np.array(["discount_10", "loyalty_bonus"])[rng.integers(0, 2, n)]
    treated = rng.random(n) < 0.5
    works = (offer == "discount_10") & treated
    y = (rng.random(n) < np.where(works, 0.5 * p, p)).astype(float)
    campaign = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, n_campaigns, n) * 91,
                                                           unit="D")
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "campaign": campaign,
                         "offer_id": offer, "treated": treated, "outcome": y})


def test_a_learnt_effect_is_used_only_as_far_as_held_out_campaigns_show_it(training_data,
                                                                          fitted):
    scorer, _ = fitted
    x = np.tile(training_data.x, (max(1, 60_000 // len(training_data.x)), 1))
    p = scorer.predict(x)
    frame = _campaigns(x, p, 4, 11)
    fit = fit_uplift(CampaignData(frame, x), scorer, load_catalogue())
    discount, loyalty = fit.models.models["discount_10"], fit.models.models["loyalty_bonus"]
    assert discount.source == LEARNT and discount.scale > 0.5, discount
    assert discount.metrics["checked_campaigns"] == 4
    assert loyalty.scale == 0.0 and "do not show it works" in loyalty.note, loyalty
    assert fit.models.models["service_call"].source == "prior"  # never in a campaign
    effects = offer_effects(fit.models, x, p, load_catalogue())
    assert np.all(effects["loyalty_bonus"] == 0) and effects["discount_10"].mean() < -0.01
    assert fit.metrics["uplift.discount_10.observed_cut_se"] > 0
    # every campaign row of a checked offer has an out-of-campaign effect, other rows none
    mine = (frame["offer_id"] == "discount_10").to_numpy()
    assert np.isfinite(fit.held_out["discount_10"][mine]).all()
    assert np.isnan(fit.held_out["discount_10"][~mine]).all()


def test_one_campaign_cannot_vouch_for_itself(training_data, fitted):
    scorer, _ = fitted
    x = np.tile(training_data.x, (max(1, 20_000 // len(training_data.x)), 1))
    frame = _campaigns(x, scorer.predict(x), 1, 12)
    model = fit_uplift(CampaignData(frame, x), scorer, load_catalogue()).models.models[
        "discount_10"]
    assert model.source == LEARNT and model.scale == 1.0
    assert "no campaign to check it on" in model.note and not model.metrics

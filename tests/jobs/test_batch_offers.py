"""The offers of a batch job: chosen over the whole base from compact per-row values, the same
as over every row."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jobs.batch_offers import choose_offers
from jobs.batch_output import BatchConfig, ScoredRows
from scoring.offers.campaign import allocate
from scoring.offers.catalogue import load_catalogue
from scoring.offers.policy import NO_OFFER, Options, best_offers


def _base(rng, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Net values (rows x offers; -inf where an offer may not be sent, about half the rows with nothing
    worth sending, some ties) and churn reductions, as ``scoring.offers.policy.options`` gives."""
    net = np.round(rng.normal(-10, 15, (n, m)), 1)  # rounded: equal values occur
    net[rng.random((n, m)) < 0.3] = -np.inf
    net[rng.random(n) < 0.1] = net[0]  # rows equal to another row: ties between customers
    return net, rng.uniform(0, 0.3, (n, m))


def _scored(net: np.ndarray, reduction: np.ndarray, costs: np.ndarray, sizes: list[int]
            ) -> ScoredRows:
    scored = ScoredRows(Path("unused"), costs, "fp", "now")
    start = 0
    for size in sizes:
        part = slice(start, start + size)
        scored.add(np.full(size, 0.5), net[part], reduction[part])
        start += size
    return scored


@pytest.mark.parametrize("budget,method", [(None, "greedy"), (40.0, "greedy"), (400.0, "greedy"),
                                           (1e9, "greedy"), (60.0, "exact")])
def test_offers_chosen_from_the_rows_worth_one_are_those_chosen_over_every_row(budget, method):
    """Only rows with an offer of positive net value are kept for the allocation: the choice,
    net value and churn reduction of every row are those of the allocation over all rows, with
    and without a budget, whatever the chunking (tight budgets and binding caps included)."""
    catalogue = load_catalogue()
    m = len(catalogue.offers)
    caps = SimpleNamespace(offers=[SimpleNamespace(id=o.id, cap_per_campaign=3)
                                   for o in catalogue.offers])
    config = BatchConfig(campaign_budget=budget, allocation=method)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 300 if method == "greedy" else 40
        net, reduction = _base(rng, n, m)
        worth = (net > 0).any(axis=1)
        assert 0 < worth.sum() < n
        dense = Options(net, reduction, catalogue.costs, np.zeros(n, dtype=bool))
        for cat in (catalogue, caps):
            core = SimpleNamespace(catalogue=cat)
            if budget is None:
                want, _ = best_offers(dense)
            else:
                want = allocate(dense, cat, budget, method).offer
            rows = np.arange(n)
            sent = want != NO_OFFER
            want_net = np.where(sent, net[rows, np.maximum(want, 0)], 0.0)
            want_cut = np.where(sent, reduction[rows, np.maximum(want, 0)], 0.0)
            for sizes in ([n], [7] * (n // 7) + [n % 7], [1, n - 1]):
                scored = _scored(net, reduction, catalogue.costs, sizes)
                assert sum(len(part) for part in scored.nets) == worth.sum()
                assert scored.rows == n
                choice, got_net, got_cut = choose_offers(core, scored, config).between(0, n)
                assert np.array_equal(choice, want), (seed, sizes)
                assert np.array_equal(got_net, want_net) and np.array_equal(got_cut, want_cut)


def test_no_rows_and_no_offer_worth_sending():
    catalogue = load_catalogue()
    core, m = SimpleNamespace(catalogue=catalogue), len(catalogue.offers)
    empty = ScoredRows(Path("unused"), catalogue.costs, "fp", "now")
    for got in choose_offers(core, empty, BatchConfig(campaign_budget=10.0)).between(0, 0):
        assert len(got) == 0
    scored = _scored(np.full((5, m), -3.0), np.zeros((5, m)), catalogue.costs, [2, 3])
    choice, net, cut = choose_offers(core, scored, BatchConfig(campaign_budget=10.0)).between(0, 5)
    assert (choice == NO_OFFER).all() and not net.any() and not cut.any()


@pytest.mark.parametrize("method", ["exact", "greedy"])
def test_among_equally_good_allocations_the_compact_rows_pick_the_all_rows_one(method):
    """Many equal net values and binding caps give several optimal allocations: the one chosen
    from the rows worth an offer is the one chosen over every row, row for row (the exact
    programme used to hold an empty "one offer" row per customer without options, and HiGHS
    then picked another of the optima on some bases, e.g. seed 85 here)."""
    costs = np.array([10.0, 25.0, 5.0])
    for seed in range(90):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(10, 60))
        net = rng.choice([-np.inf, -1.0, 2.0, 4.0, 6.0], size=(n, 3), p=[0.3, 0.3, 0.2, 0.1, 0.1])
        caps = SimpleNamespace(offers=[SimpleNamespace(id=f"o{k}", cap_per_campaign=int(c))
                                       for k, c in enumerate(rng.integers(1, 6, 3))])
        budget = float(rng.choice([15.0, 30.0, 50.0]))
        every = allocate(Options(net, net / 100, costs, np.zeros(n, dtype=bool)), caps, budget,
                         method).offer
        scored = _scored(net, net / 100, costs, [n // 2, n - n // 2])
        got, _, _ = choose_offers(SimpleNamespace(catalogue=caps), scored,
                                  BatchConfig(campaign_budget=budget, allocation=method)
                                  ).between(0, n)
        assert np.array_equal(got, every), (seed, got, every)

"""The offers of a batch job, chosen over the whole base from the scored rows' offer values.

``ScoredRows`` (``jobs.batch_output``) keeps the offer values of the rows worth an offer only;
``choose_offers`` allocates over them (the campaign budget's allocation, else each row's best
offer) and gives a compact ``Chosen``, read back chunk by chunk when the output is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scoring.core import ScoringCore
from scoring.offers.campaign import allocate
from scoring.offers.policy import NO_OFFER, Options, best_offers

if TYPE_CHECKING:  # annotations only: jobs.batch_output imports this module
    from jobs.batch_output import BatchConfig, ScoredRows

__all__ = ["Chosen", "choose_offers"]


@dataclass(frozen=True)
class Chosen:
    """The offers chosen over the whole base, for the rows given one only: their positions
    among the scored rows (ascending), the offer's index, its expected net value and its churn
    reduction. Every other row gets ``NO_OFFER``, 0 and 0."""

    rows: np.ndarray
    offer: np.ndarray
    net: np.ndarray
    cut: np.ndarray

    def between(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The offer, net value and churn reduction of each scored row in [start, stop)."""
        lo, hi = np.searchsorted(self.rows, [start, stop])
        at = self.rows[lo:hi] - start
        choice = np.full(stop - start, NO_OFFER, dtype=np.int64)
        net, cut = np.zeros(stop - start), np.zeros(stop - start)
        choice[at], net[at], cut[at] = self.offer[lo:hi], self.net[lo:hi], self.cut[lo:hi]
        return choice, net, cut


def choose_offers(core: ScoringCore, scored: ScoredRows, config: BatchConfig) -> Chosen:
    """The rows given an offer, the offer, its expected net value and its churn reduction, over
    the whole base: the budgeted allocation when the job has a campaign budget, else each row's
    best offer.

    Only the rows with an offer worth sending take part: the others get none either way, and
    every method orders the (row, offer) options it may send in the rows' order, so leaving them
    out changes no choice (the exact allocation's programme is the same: ``allocate_exact``)."""
    rows = (np.concatenate(scored.where) if scored.where else np.zeros(0, dtype=np.int64))
    m = len(scored.costs)
    opts = Options(np.vstack(scored.nets) if scored.nets else np.zeros((0, m)),
                   np.vstack(scored.reductions) if scored.reductions else np.zeros((0, m)),
                   scored.costs, np.zeros(len(rows), dtype=bool))
    if not len(rows):
        chosen = np.zeros(0, dtype=np.int64)
    elif config.campaign_budget is not None:
        chosen = allocate(opts, core.catalogue, config.campaign_budget, config.allocation).offer
    else:
        chosen, _ = best_offers(opts)
    sent = np.flatnonzero(chosen != NO_OFFER)
    offer = chosen[sent].astype(np.int64)
    return Chosen(rows[sent], offer, opts.net[sent, offer], opts.reduction[sent, offer])

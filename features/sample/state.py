"""What the simulation steps share: the calendar, the customers' traits, their changing state, the
month being simulated, and the event tables filled as it runs.

Times are ``int64`` nanoseconds since the epoch; customers are positions ``0..n-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9
NAT = np.iinfo(np.int64).min  # an empty timestamp (not closed, not answered, not accepted)

_POSITIONS = {"cust", "kind", "offer", "channel", "category"}  # customer positions and codes:
# 32 bits are enough; timestamps, amounts and counts keep their types


@dataclass
class Events:
    """Event arrays of one table, appended month by month, concatenated at the end."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **columns: np.ndarray) -> None:
        for k, v in columns.items():
            self.parts.setdefault(k, []).append(v)

    def arrays(self) -> dict[str, np.ndarray]:
        """Concatenated columns; the parts are released column by column (memory at 1M)."""
        out = {}
        for k in list(self.parts):
            a = np.concatenate(self.parts.pop(k))
            out[k] = a.astype(np.int32) if k in _POSITIONS and a.dtype.kind == "i" else a
        return out


def times(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A uniform random time in ``[lo, hi)`` for each pair."""
    return lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)


@dataclass(frozen=True)
class Calendar:
    """The simulated months: ``bounds[m]`` to ``bounds[m + 1]`` is month ``m``."""

    bounds: np.ndarray  # months + 1 month starts
    month_no: np.ndarray  # calendar month (1-12) of each simulated month

    @classmethod
    def of(cls, start: str, months: int) -> Calendar:
        m0 = np.datetime64(start, "M")
        bounds = (m0 + np.arange(months + 1)).astype("datetime64[ns]").view(np.int64)
        return cls(bounds, (m0 + np.arange(months)).astype(int) % 12 + 1)

    @property
    def start_ns(self) -> int:
        return int(self.bounds[0])

    @property
    def end_ns(self) -> int:
        return int(self.bounds[-1])


@dataclass(frozen=True)
class Customers:
    """Who the customers are: traits drawn once, fixed for the whole simulation."""

    signup: np.ndarray  # signup date (ns, a whole day)
    plan: np.ndarray  # code into mechanics.PLANS
    segment: np.ndarray  # code into mechanics.SEGMENTS
    region: np.ndarray  # code into mechanics.REGIONS
    has_contract: np.ndarray
    freq: np.ndarray  # base order rate per month
    spend_mu: np.ndarray  # typical order value
    complain: np.ndarray  # probability that a product problem becomes a ticket
    price_sens: np.ndarray  # price sensitivity in [0, 1]
    app_user: np.ndarray
    loyalty: np.ndarray  # loyalty-programme member
    sat_mu: np.ndarray  # the satisfaction a customer drifts back to
    eng_trait: np.ndarray  # how engaged a customer is at a given satisfaction
    sleeping_dog: np.ndarray  # dormant contract customer: a contact reminds them to cancel
    nps_phase: np.ndarray  # which month (mod 6) the NPS survey goes out
    problem_rate: np.ndarray  # product problems per month


@dataclass
class CustomerState:
    """What changes month by month, one entry per customer (updated in place by the steps)."""

    sat: np.ndarray  # satisfaction
    eng: np.ndarray  # engagement in [0, 1]
    alive: np.ndarray  # not churned yet
    churn_ts: np.ndarray  # when the customer left (int64 max while they have not)
    cancel: np.ndarray  # contract cancel date (NAT if none)
    pain: np.ndarray  # recent support pain, decaying
    offer_mult: np.ndarray  # hazard factor of the last retention offer
    offer_until: np.ndarray  # last month that offer is in force (-1: none)


@dataclass(frozen=True)
class Month:
    """Month ``m`` for the customers active in it (``act``) and when each was there."""

    m: int
    lo_m: int  # first instant of the month
    hi_m: int  # first instant of the next month
    end_ns: int  # end of the data: later events are not recorded
    act: np.ndarray  # positions of the customers active this month
    churned: np.ndarray  # which of them leave this month
    lo: np.ndarray  # from when each was there this month (signup or month start) ...
    hi: np.ndarray  # ... until when (leaving time or month end)
    frac: np.ndarray  # share of the month each was there

    @property
    def campaign_day(self) -> int:
        """The instant a retention campaign is sent this month: its 20th day."""
        return self.lo_m + 19 * DAY

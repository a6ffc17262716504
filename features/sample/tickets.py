"""The tickets table of the sample: product problems, the few that become support tickets, and
what slow, escalated or reopened tickets and complaints do to satisfaction and support pain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.sample.state import HOUR, NAT, Customers, Events, Month, times


@dataclass(frozen=True)
class Support:
    """This month's tickets (for the surveys that follow them) and their effect on customers."""

    t_idx: np.ndarray  # position in ``month.act`` of each ticket's customer
    closed: np.ndarray  # when each ticket was closed (may be after the end of the data)
    slow: np.ndarray  # took more than 72 hours
    escalated: np.ndarray
    reopened: np.ndarray
    fcr: np.ndarray  # resolved at the first contact
    impact: np.ndarray  # change of satisfaction per active customer (problems and tickets)
    pain_add: np.ndarray  # support pain added per active customer


def support_tickets(rng: np.random.Generator, people: Customers, month: Month,
                    tickets: Events) -> Support:
    """Product problems this month; those a customer complains about become tickets (appended to
    ``tickets``); unreported problems hurt satisfaction too."""
    act, lo, hi, end_ns = month.act, month.lo, month.hi, month.end_ns
    k = rng.poisson(people.problem_rate[act] * month.frac)
    p_cust = np.repeat(np.arange(len(act)), k)
    ticketed = rng.random(len(p_cust)) < people.complain[act[p_cust]]
    impact = np.bincount(p_cust[~ticketed], minlength=len(act)) * -0.35
    t_idx = p_cust[ticketed]
    nt = len(t_idx)
    opened = times(rng, lo[t_idx], hi[t_idx])
    escalated = rng.random(nt) < 0.12
    reopened = rng.random(nt) < 0.10
    hours = rng.lognormal(np.log(20), 1.0, nt) * np.where(escalated, 2.0, 1.0)
    slow = hours > 72
    fcr = ~escalated & ~reopened & (rng.random(nt) < 0.6)
    complaint = rng.random(nt) < 0.12 + 0.35 * slow + 0.2 * escalated
    closed = opened + (hours * HOUR).astype(np.int64)
    hurt = (-0.15 - 0.35 * slow - 0.35 * escalated - 0.35 * reopened - 0.35 * complaint
            + 0.10 * fcr)
    impact += np.bincount(t_idx, weights=hurt, minlength=len(act))
    bad = (slow.astype(int) + escalated + reopened + 2 * complaint).astype(float)
    pain_add = np.bincount(t_idx, weights=bad, minlength=len(act))
    tickets.add(cust=act[t_idx], opened=opened, closed=np.where(closed < end_ns, closed, NAT),
                channel=rng.choice(3, nt, p=[0.4, 0.35, 0.25]),
                category=rng.integers(0, 4, nt), complaint=complaint, escalated=escalated,
                reopened=reopened, fcr=fcr)
    return Support(t_idx=t_idx, closed=closed, slow=slow, escalated=escalated, reopened=reopened,
                   fcr=fcr, impact=impact, pain_add=pain_add)

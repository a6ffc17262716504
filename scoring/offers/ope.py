"""Judge a policy before it is sent: off-policy evaluation on logged randomised campaigns.

A logged campaign row is a customer, the action they got (an offer, or nothing: a hold-out), the
probability the campaign's randomisation gave that action (its *propensity*), and the net value
that followed: ``reward = value x (1 - gone) - cost of the action``. A policy to judge names one
action per logged customer. Its value per customer is estimated two ways:

- inverse propensity (IPS): ``mean(1[a = pi(x)] / propensity x reward)``;
- doubly robust (DR): ``mean(q(x, pi(x)) + 1[a = pi(x)] / propensity x (reward - q(x, a)))``,
  where ``q`` predicts each action's reward (the churn model and the effect models); right when
  either the propensities or ``q`` are.

Both are means of one term per customer, so the interval comes from those terms' variance (the
influence function; normal, ``1 - alpha``). Each policy is also compared with sending nothing, on
the same customers (paired: a narrower interval than the difference of two).

Only actions the logging randomised can be judged: a customer whose policy action had no chance
in the log contributes only through ``q`` (DR) or nothing (IPS), so both are right only where the
log gave every action the policy picks a chance; ``matched`` is the share of customers whose
logged action is the policy's (the rows the estimate really rests on).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from scoring.offers.design import CampaignError
from scoring.offers.policy import NO_OFFER


@dataclass(frozen=True)
class LoggedCampaigns:
    """Arrays over logged customers; actions are offer indices or NO_OFFER (held out)."""

    action: np.ndarray
    propensity: np.ndarray  # probability of the logged action under the logging randomisation
    reward: np.ndarray
    action_reward: np.ndarray | None = None  # (customers, offers + 1): q(x, a); column 0 = none

    def __post_init__(self):
        n = len(self.action)
        if len(self.propensity) != n or len(self.reward) != n:
            raise ValueError("action, propensity and reward must have the same length")
        bad = ~((self.propensity > 0) & (self.propensity <= 1))
        if bad.any():
            raise CampaignError(f"logged propensities must be in (0, 1]; e.g. "
                                f"{self.propensity[bad][:3].tolist()} ({int(bad.sum())} rows)")


def rewards(outcome: np.ndarray, value: np.ndarray, action: np.ndarray,
            costs: np.ndarray) -> np.ndarray:
    """Net value realised: the customer's value if they stayed, less the cost of what was sent."""
    spent = np.where(action == NO_OFFER, 0.0, costs[np.maximum(action, 0)])
    return np.asarray(value, float) * (1 - np.asarray(outcome, float)) - spent


def action_rewards(p_gone: np.ndarray, effects: np.ndarray, value: np.ndarray,
                   costs: np.ndarray) -> np.ndarray:
    """q(x, a) for every action: column 0 sends nothing, column 1 + j sends offer j (``effects``:
    change in the gone probability per offer, negative helps)."""
    p0 = np.clip(np.asarray(p_gone, float), 0, 1)
    gone = np.column_stack([p0, np.clip(p0[:, None] + effects, 0, 1)])
    return np.asarray(value, float)[:, None] * (1 - gone) - np.concatenate([[0.0], costs])[None, :]


def _terms(logged: LoggedCampaigns, target: np.ndarray, method: str) -> np.ndarray:
    match = logged.action == target
    w = np.where(match, 1.0 / logged.propensity, 0.0)
    if method == "ips":
        return w * logged.reward
    if logged.action_reward is None:
        raise ValueError("the doubly robust estimate needs action_reward (q)")
    q = logged.action_reward
    rows = np.arange(len(target))
    q_target = q[rows, target + 1]
    q_logged = q[rows, logged.action + 1]
    return q_target + w * (logged.reward - q_logged)


def _interval(terms: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    n = len(terms)
    mean = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return mean, se, mean - z * se, mean + z * se


def estimate(logged: LoggedCampaigns, target: np.ndarray, method: str = "dr",
             alpha: float = 0.05, baseline: np.ndarray | None = None) -> dict[str, float]:
    """Value per customer of the policy naming ``target`` actions, with its interval; with
    ``baseline`` (another policy's actions), also the paired difference target - baseline."""
    if method not in ("ips", "dr"):
        raise ValueError(f"unknown estimator {method!r} (ips or dr)")
    target = np.asarray(target)
    if len(target) != len(logged.action):
        raise ValueError("one target action per logged customer")
    terms = _terms(logged, target, method)
    mean, se, low, high = _interval(terms, alpha)
    out = {"value": mean, "se": se, "low": low, "high": high,
           "matched": float(np.mean(logged.action == target))}
    if baseline is not None:
        d, dse, dlow, dhigh = _interval(terms - _terms(logged, np.asarray(baseline), method),
                                        alpha)
        out.update({"gain": d, "gain_se": dse, "gain_low": dlow, "gain_high": dhigh})
    return out


def judge_policies(logged: LoggedCampaigns, policies: dict[str, np.ndarray],
                   alpha: float = 0.05) -> pd.DataFrame:
    """IPS and DR value per customer of each policy, and its gain over sending nothing."""
    nothing = np.full(len(logged.action), NO_OFFER)
    rows = []
    for name, target in policies.items():
        for method in ("ips", "dr") if logged.action_reward is not None else ("ips",):
            e = estimate(logged, target, method, alpha, baseline=nothing)
            rows.append({"policy": name, "estimator": method, **e,
                         "offers_per_customer": float(np.mean(np.asarray(target) != NO_OFFER))})
    return pd.DataFrame(rows)


def logged_propensity(offers: pd.DataFrame) -> np.ndarray:
    """The propensity of each logged row: the ``propensity`` column when the campaign recorded
    it, else estimated per campaign (``sent_ts`` day) for a campaign that randomised uniformly:
    a hold-out's is the campaign's hold-out share, a treated row's the share of the campaign that
    was sent that offer."""
    if "propensity" in offers.columns and offers["propensity"].notna().all():
        return offers["propensity"].to_numpy(float)
    campaign = pd.to_datetime(offers["sent_ts"]).dt.normalize()
    treated = offers["treated"].astype(bool)
    key = np.where(treated, offers["offer_id"].astype(str), "")
    size = campaign.map(campaign.value_counts())
    cell = pd.Series(list(zip(campaign, key, strict=True))).map(
        pd.Series(list(zip(campaign, key, strict=True))).value_counts())
    estimated = cell.to_numpy(float) / size.to_numpy(float)
    if "propensity" in offers.columns:  # recorded where known, estimated elsewhere
        return offers["propensity"].fillna(pd.Series(estimated, index=offers.index)) \
            .to_numpy(float)
    return estimated

"""Voice of the customer: NPS (promoter / passive / detractor), CSAT, CES and survey non-response."""

from __future__ import annotations

import numpy as np

from features.config import FeatureConfig
from features.events import EventView, ratio
from features.families import FeatureSink

_SCALES = {"nps": "0-10", "csat": "1-5", "ces": "1-7, 7 = hardest"}
_NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "effort score (CES)"}


def add_voice(sink: FeatureSink, answers: EventView, sent: EventView | None,
              config: FeatureConfig) -> None:
    """``answers``: surveys by response time; ``sent``: by sent time (None without sent_ts)."""
    put = sink.put
    lw = config.long_window
    kind = answers.col("kind")
    for k, scale in _SCALES.items():
        view = answers.where(kind == k)
        s = view.col("score")
        last = put(f"{k}_last", view.nth_last(s, 1), family="voice", window=None, unit=scale,
                   description=f"latest {_NAMES[k]} answer ({scale})",
                   sentence=f"latest {_NAMES[k]} answer was {{value}}")
        put(f"{k}_change", last - view.nth_last(s, 2), family="voice", window=None, unit="points",
            description=f"latest {_NAMES[k]} minus the one before",
            sentence=f"{_NAMES[k]} moved by {{value}} points since the previous answer")
        put(f"{k}_mean_{lw}d", view.mean(s, lw), family="voice", window=lw, unit=scale,
            description=f"mean {_NAMES[k]} over the last {lw} days",
            sentence=f"{_NAMES[k]} averaged {{value}} over the last {lw} days")
        if k == "nps":
            answered = ~np.isnan(last)
            put("nps_detractor", np.where(answered, (last <= 6).astype(float), np.nan),
                family="voice", window=None, unit="flag",
                description="latest NPS answer was a detractor (0-6)",
                sentence="detractor at the latest NPS survey: {value}")
            put("nps_promoter", np.where(answered, (last >= 9).astype(float), np.nan),
                family="voice", window=None, unit="flag",
                description="latest NPS answer was a promoter (9-10)",
                sentence="promoter at the latest NPS survey: {value}")
    put("days_since_last_survey_answer", answers.days_since_last(), family="voice", window=None,
        unit="days", description="days since the customer last answered a survey",
        sentence="last answered a survey {value} days ago")
    if sent is None:
        return
    response = sent.col("response_ts")
    answered = (response != np.iinfo(np.int64).min) & (response < sent.cutoff_ns)
    n_sent = sent.count(lw)
    n_unanswered = sent.count(lw, mask=~answered)
    put(f"surveys_unanswered_{lw}d", n_unanswered, family="voice", window=lw, unit="surveys",
        description=f"surveys sent in the last {lw} days and not answered",
        sentence=f"{{value}} surveys left unanswered in the last {lw} days")
    put(f"survey_response_rate_{lw}d", ratio(n_sent - n_unanswered, n_sent), family="voice",
        window=lw, unit="share", description=f"share of surveys answered, last {lw} days",
        sentence=f"answered {{value}} of surveys in the last {lw} days")

"""The monitoring report draws what drifted: histograms for numbers, category shares side by side
for categories (once an empty chart)."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from jobs.monitor_report import overlay_figure, write_report
from jobs.monitoring import MonitorConfig, category_shares, drift, psi_categorical
from scoring.bands import RiskBands

C0, C1 = (0x1F / 255, 0x77 / 255, 0xB4 / 255), (0xFF / 255, 0x7F / 255, 0x0E / 255)  # mpl's first two


def _frames(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"plan": rng.choice(["basic", "plus", "premium"], n, p=[0.6, 0.3, 0.1]),
                        "recency_days": rng.exponential(40, n)})
    cur = pd.DataFrame({"plan": rng.choice(["basic", "plus", "premium", "family"], n,
                                           p=[0.2, 0.3, 0.3, 0.2]),
                        "recency_days": rng.exponential(40, n)})
    return ref, cur


def test_category_shares_are_side_by_side_and_add_up():
    ref = pd.Series(["a", "a", "b", None])
    cur = pd.Series(["b", "c", "c", "c"])
    shares = category_shares(ref, cur)
    assert shares.to_dict("index") == {
        "<missing>": {"reference": 0.25, "new": 0.0}, "a": {"reference": 0.5, "new": 0.0},
        "b": {"reference": 0.25, "new": 0.25}, "c": {"reference": 0.0, "new": 0.75}}
    top = category_shares(ref, cur, top=2)
    assert list(top.index) == ["c", "<other>"], "the largest share on either side comes first"
    assert top.sum().to_dict() == pytest.approx({"reference": 1.0, "new": 1.0})
    assert psi_categorical(ref, cur) > 1.0 and psi_categorical(ref, ref) == pytest.approx(0.0)


def test_a_categorical_feature_is_drawn_as_the_two_share_bars_of_each_category():
    ref, cur = _frames()
    fig = overlay_figure(ref["plan"], cur["plan"], "plan", "category")
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_width() > 0]
    ticks = sorted(((t.get_position()[1], t.get_text()) for t in ax.get_yticklabels()),
                   reverse=True)
    plt.close(fig)
    shares = category_shares(ref["plan"], cur["plan"], top=12)
    assert [text for _, text in ticks] == list(shares.index), \
        "one row per category, the largest on top"
    drawn = sorted(round(b.get_width(), 9) for b in bars)
    expected = sorted(round(v, 9) for v in shares.to_numpy().ravel() if v > 0)
    assert drawn == expected, "each bar is a category's share in the reference or the new data"


def _image(page: str, alt: str) -> np.ndarray:
    match = re.search(rf"<img alt='{re.escape(alt)}' src='data:image/png;base64,([^']+)'", page)
    assert match, f"no image {alt!r} in the report"
    return mpimg.imread(io.BytesIO(base64.b64decode(match.group(1))), format="png")


def _coloured(image: np.ndarray, colour: tuple[float, float, float]) -> int:
    """Pixels of (nearly) this colour: the bars' fill."""
    return int((np.abs(image[..., :3] - np.array(colour)).max(axis=2) < 0.03).sum())


def test_the_report_draws_a_non_empty_chart_for_a_drifted_categorical_feature(tmp_path):
    ref, cur = _frames()
    config = MonitorConfig()
    scores = np.random.default_rng(1).uniform(0, 1, len(ref))
    report = drift(ref, cur, ["plan", "recency_days"], ["category", "number"], scores, scores,
                   RiskBands(), config)
    assert report.features.set_index("feature").loc["plan", "kind"] == "category"
    path = write_report(tmp_path / "monitor.html", "Monitoring", report, ref, cur, scores, scores,
                        config)
    page = path.read_text()
    plan = _image(page, "plan: reference vs. new")
    # both sides drawn, in proportion to the shares: the new data's bars cover a share of 1.0 over
    # four categories, the reference's 1.0 over three; each colour fills a real area
    assert _coloured(plan, C0) > 500 and _coloured(plan, C1) > 500, \
        "the categorical chart is empty"
    numeric = _image(page, "recency_days: reference vs. new")
    assert _coloured(numeric, C0) > 0 or _coloured(numeric, (0.56, 0.73, 0.85)) > 0

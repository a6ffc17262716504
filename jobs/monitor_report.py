"""The monitoring report: one HTML page with plots a person would rather look at than read."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from features.io import write_atomic  # noqa: E402
from jobs.monitoring import DriftReport, category_shares  # noqa: E402


def _png(fig, alt: str = "") -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return (f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode() + "'/>")


def _psi_bars(report: DriftReport, config) -> str:
    top = report.features.dropna(subset=["psi"]).head(20).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 6))
    colours = ["#c0392b" if s == "alert" else "#e67e22" if s == "warn" else "#7f8c8d"
               for s in top["status"]]
    ax.barh(top["feature"], top["psi"], color=colours)
    ax.axvline(config.psi_warn, color="#e67e22", ls="--", lw=1, label="warn")
    ax.axvline(config.psi_alert, color="#c0392b", ls="--", lw=1, label="alert")
    ax.set(xlabel="population stability index", title="Feature drift (top 20)")
    ax.legend()
    return _png(fig)


CATEGORIES_SHOWN = 12  # the rest of a categorical feature's categories are drawn as <other>


def overlay_figure(reference: pd.Series, current: pd.Series, name: str, kind: str):
    """One feature, reference vs. new: the two histograms of a number, the category shares side
    by side for a category (a categorical feature has no histogram)."""
    if kind == "category":
        return _category_figure(category_shares(reference, current, top=CATEGORIES_SHOWN), name)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    r = pd.to_numeric(reference, errors="coerce").dropna()
    c = pd.to_numeric(current, errors="coerce").dropna()
    if len(r) and len(c):
        lo, hi = np.nanpercentile(np.r_[r, c], [1, 99])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
        ax.hist(r, bins=bins, alpha=0.5, density=True, label="reference")
        ax.hist(c, bins=bins, alpha=0.5, density=True, label="new")
        ax.legend()
    ax.set_title(name)
    return fig


def _category_figure(shares: pd.DataFrame, name: str):
    """Horizontal bars, two per category (reference above new), the largest category on top."""
    n = len(shares)
    fig, ax = plt.subplots(figsize=(4.5, max(3.0, 0.35 * n + 1.2)))
    y = np.arange(n)[::-1]
    height = 0.4
    ax.barh(y + height / 2, shares["reference"], height, label="reference")
    ax.barh(y - height / 2, shares["new"], height, label="new")
    ax.set_yticks(y, [str(c) for c in shares.index])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="share of customers", title=name)
    ax.legend()
    return fig


def _overlays(reference: pd.DataFrame, current: pd.DataFrame, drifted: pd.DataFrame) -> str:
    out = []
    for name, kind in drifted[["feature", "kind"]].head(6).itertuples(index=False):
        fig = overlay_figure(reference[name], current[name], name, kind)
        out.append(_png(fig, alt=f"{name}: reference vs. new"))
    return "".join(out)


def _scores(ref: np.ndarray, cur: np.ndarray) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(0, 1, 41)
    ax.hist(ref, bins=bins, alpha=0.5, density=True, label="reference (hold-out)")
    ax.hist(cur, bins=bins, alpha=0.5, density=True, label="new")
    ax.set(xlabel="churn probability", title="Score distribution")
    ax.legend()
    return _png(fig)


def _calibration(y: np.ndarray, p: np.ndarray) -> str:
    order = np.argsort(p)
    bins = [b for b in np.array_split(order, 10) if len(b)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    xs, ys = [p[b].mean() for b in bins], [y[b].mean() for b in bins]
    axes[0].plot(xs, ys, "o-")
    top = max(max(xs), max(ys)) * 1.05
    axes[0].plot([0, top], [0, top], "k:")
    axes[0].set(xlabel="predicted", ylabel="observed churn", title="Calibration (back-test)")
    ranked = y[np.argsort(-p)]
    share = np.arange(1, len(y) + 1) / len(y)
    axes[1].plot(share, np.cumsum(ranked) / max(ranked.sum(), 1), label="model")
    axes[1].plot([0, 1], [0, 1], "k:", label="random")
    axes[1].set(xlabel="share contacted", ylabel="share of churners caught",
                title="Cumulative gains (back-test)")
    axes[1].legend()
    return _png(fig)


def _uplift_calibration_plot(calibration: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(calibration["predicted_cut"], calibration["realised_cut"],
                yerr=1.96 * calibration["cut_se"], fmt="o-", capsize=3)
    lo = float(min(calibration["predicted_cut"].min(), calibration["realised_cut"].min(), 0))
    hi = float(max(calibration["predicted_cut"].max(), calibration["realised_cut"].max()))
    ax.plot([lo, hi], [lo, hi], "k:")
    ax.set(xlabel="predicted churn cut (decile mean)", ylabel="realised churn cut (hold-out)",
           title="Uplift calibration")
    return _png(fig, alt="uplift calibration by decile")


def readout_section(readout: pd.DataFrame, calibration: pd.DataFrame | None = None) -> str:
    """The campaign readout: per offer the realised churn cut and its interval from the hold-out,
    the predicted cut, net value and verdict; the uplift calibration by decile."""
    cols = ["offer_id", "verdict", "treated", "hold_out", "realised_cut", "ci_low", "ci_high",
            "predicted_cut", "realised_net_per_offer", "expected_net_per_offer",
            "realised_net_value"]
    parts = ["<h2>Campaign readout</h2>",
             "<p>Churn cut = the hold-out's churn rate minus the treated customers' (within each "
             "arm); proven = the interval is above zero, disproven = below the smallest cut worth "
             "having, unknown = neither.</p>",
             readout.loc[:, [c for c in cols if c in readout.columns]].to_html(
                 index=False, float_format=lambda v: f"{v:.3f}")]
    if calibration is not None and len(calibration):
        parts += ["<h3>Predicted vs realised cut, by decile of the prediction</h3>",
                  _uplift_calibration_plot(calibration),
                  calibration.to_html(index=False, float_format=lambda v: f"{v:.3f}")]
    return "".join(parts)


def _page(title: str, parts: list[str]) -> str:
    return ("<html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
            ".alert{color:#c0392b}.warn{color:#e67e22}td,th{padding:2px 8px}"
            "img{max-width:100%}</style></head><body>" + "".join(parts) + "</body></html>")


def write_readout_report(path: Path, title: str, readout: pd.DataFrame,
                         calibration: pd.DataFrame | None = None) -> Path:
    """A page with the readout section alone (``churn offers readout --report``)."""
    page = _page(title, [f"<h1>{html.escape(title)}</h1>", readout_section(readout, calibration)])
    return write_atomic(path, lambda tmp: tmp.write_text(page))


def write_report(path: Path, title: str, report: DriftReport, reference: pd.DataFrame,
                 current: pd.DataFrame, ref_scores, cur_scores, config, backtest=None,
                 holdout=None, backtest_data=None, offers: pd.DataFrame | None = None,
                 readout: pd.DataFrame | None = None,
                 calibration: pd.DataFrame | None = None) -> Path:
    status = "ALERT" if report.alerts else "OK"
    items = "".join(f"<li class='alert'>{html.escape(a)}</li>" for a in report.alerts) + \
        "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in report.warnings[:20])
    bands = "".join(f"<tr><td>{b}</td><td>{report.bands_ref[b]:.1%}</td>"
                    f"<td>{report.bands_cur[b]:.1%}</td></tr>" for b in report.bands_ref)
    drifted = report.features.dropna(subset=["psi"])
    parts = [f"<h1>{html.escape(title)}: {status}</h1>",
             f"<p>{len(report.alerts)} alerts, {len(report.warnings)} warnings; score PSI "
             f"{report.score_psi:.3f}</p><ul>{items}</ul>",
             "<h2>Scores</h2>", _scores(ref_scores, cur_scores),
             f"<table><tr><th>risk band</th><th>reference</th><th>new</th></tr>{bands}</table>",
             "<h2>Features</h2>", _psi_bars(report, config),
             "<h3>The most drifted, reference vs. new</h3>",
             _overlays(reference, current, drifted)]
    if backtest is not None:
        rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td><td>"
                       f"{'' if holdout is None or k not in holdout else f'{holdout[k]:.4f}'}"
                       f"</td></tr>" for k, v in backtest.items())
        parts += ["<h2>Back-test of an earlier scoring</h2>",
                  f"<table><tr><th>metric</th><th>back-test</th><th>hold-out at training</th>"
                  f"</tr>{rows}</table>", _calibration(*backtest_data)]
    if offers is not None:
        parts += ["<h2>Offers: realised vs. expected</h2>",
                  "<p>Customers the scoring recommended an offer to and whom a later randomised "
                  "campaign selected for that offer: the hold-out's churn minus the treated "
                  "customers' churn, against what the scoring expected.</p>",
                  offers.to_html(index=False, float_format=lambda v: f"{v:.3f}")
                  if len(offers) else "<p>No recommended customer was in a later campaign.</p>"]
    if readout is not None:
        parts.append(readout_section(readout, calibration))
    table = report.features.head(40).to_html(index=False, float_format=lambda v: f"{v:.3f}")
    parts += ["<h2>All features</h2>", table]
    page = _page(title, parts)
    return write_atomic(path, lambda tmp: tmp.write_text(page))

"""Figures for ``bench_quality.py``: AUC per seed, the best peer, the spread and the verdict;
a readable table and a JSON document. Pure functions of the per-seed hold-out scores."""

from __future__ import annotations

import platform
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

PEER_ORDER = ("logistic", "lgbm_default", "event_counts_lgbm", "bgnbd_p_alive", "bgnbd_expected",
              "recency")
PEER_TITLES = {"logistic": "logistic", "lgbm_default": "LGBM default",
               "event_counts_lgbm": "type counts+LGBM", "bgnbd_p_alive": "BG/NBD P(alive)",
               "bgnbd_expected": "BG/NBD E[orders]", "recency": "recency"}
YARDSTICK_TITLES = {"project_uncalibrated": "project before calibration",
                    "oracle": "oracle (true hazard)"}


@dataclass
class Row:
    """One data set: its evaluations, one per seed (hold-out labels and every model's scores)."""

    name: str
    path: str  # "events" | "table"
    note: str
    evals: list[dict]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by ranks (ties share their rank), as ``sklearn.metrics.roc_auc_score``."""
    y = np.asarray(y) > 0.5
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def paired_bootstrap_sd(y: np.ndarray, a: np.ndarray, b: np.ndarray, draws: int,
                        seed: int = 0) -> float:
    """Standard deviation of AUC(a) - AUC(b) over hold-out rows drawn with replacement."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(draws):
        idx = rng.integers(0, len(y), len(y))
        diffs.append(auc(y[idx], a[idx]) - auc(y[idx], b[idx]))
    diffs = np.asarray(diffs)
    return float(np.nanstd(diffs, ddof=1)) if np.isfinite(diffs).sum() > 1 else float("nan")


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "per_seed": [round(float(x), 5) for x in v]}


def summarise(row: Row, draws: int) -> dict:
    evals = row.evals
    project = [auc(e["y"], e["project"]) for e in evals]
    names = [n for n in PEER_ORDER if all(n in e["peers"] for e in evals)]
    peers = {n: _stats([auc(e["y"], e["peers"][n]) for e in evals]) for n in names}
    best = max(names, key=lambda n: peers[n]["mean"])
    diffs = [project[i] - peers[best]["per_seed"][i] for i in range(len(evals))]
    boot = [paired_bootstrap_sd(e["y"], e["project"], e["peers"][best], draws, seed=i)
            for i, e in enumerate(evals)]
    d = _stats(diffs)
    spread = max(d["sd"], float(np.nanmean(boot)))
    verdict = ("above" if d["mean"] > spread else "below" if d["mean"] < -spread
               else "at (within spread)")
    yardsticks = {}
    for name in evals[0]["yardsticks"]:
        yardsticks[name] = _stats([auc(e["y"], e["yardsticks"][name]) for e in evals])
    first = evals[0]
    return {
        "data_set": row.name, "path": row.path, "note": row.note,
        "seeds": [e["seed"] for e in evals],
        "rows": int(np.mean([e["rows"] for e in evals])),
        "holdout_rows": int(np.mean([len(e["y"]) for e in evals])),
        "holdout_positive_rate": float(np.mean([np.mean(e["y"]) for e in evals])),
        "holdout_cutoff": first.get("holdout_cutoff"),
        "project_features": first["features"], "peer_features": first["peer_features"],
        "project": _stats(project), "peers": peers, "best_peer": best,
        "difference": {**d, "bootstrap_sd": float(np.nanmean(boot)), "spread": spread},
        "verdict": verdict, "yardsticks": yardsticks,
        "seconds": round(float(sum(e["seconds"] for e in evals)), 1),
    }


def _cell(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['mean']:.3f}" + (f" ± {s['sd']:.3f}" if s["sd"] >= 0.0005 else "")


def render(summaries: list[dict], seconds: float, args) -> str:
    peers = [p for p in PEER_ORDER if any(p in s["peers"] for s in summaries)]
    head = (["data set", "hold-out rows (pos.)", "project"] + [PEER_TITLES[p] for p in peers]
            + ["best peer", "project - best (spread)", "verdict"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        d = s["difference"]
        cells = ([s["data_set"], f"{s['holdout_rows']:,} ({s['holdout_positive_rate']:.1%})",
                  "**" + _cell(s["project"]) + "**"]
                 + [_cell(s["peers"].get(p)) for p in peers]
                 + [PEER_TITLES[s["best_peer"]], f"{d['mean']:+.3f} ({d['spread']:.3f})",
                    s["verdict"]])
        lines.append("| " + " | ".join(cells) + " |")
    out = ["", "ROC AUC on the hold-out, mean ± sd over seeds (the seeds of each data set are "
           "listed below the table); peers on the same rows", "", *lines, ""]
    for s in summaries:
        extra = "".join(f"; {YARDSTICK_TITLES.get(k, k)} {_cell(v)}"
                        for k, v in s["yardsticks"].items())
        out.append(f"- {s['data_set']}: {s['note']}; {s['rows']:,} rows in all"
                   + (f", hold-out cutoff {s['holdout_cutoff']}" if s["holdout_cutoff"] else "")
                   + f"; seeds {s['seeds']}; {s['project_features']} project features, "
                   f"{s['peer_features']} peer columns{extra}; {s['seconds']:.0f} s")
    sample = [s for s in summaries if s["data_set"].startswith("sample ")]
    if len(sample) > 1:
        named = next((s for s in sample if s["data_set"] == "sample named"), None)
        if named:
            out += ["", "Sample variants against the named sample, same generator seeds "
                    "(difference per seed, mean ± sd):"]
            for s in sample:
                if s is named:
                    continue
                diff = np.subtract(s["project"]["per_seed"], named["project"]["per_seed"])
                out.append(f"- project on {s['data_set']} - on sample named: "
                           f"{diff.mean():+.3f} ± {diff.std(ddof=1) if len(diff) > 1 else 0:.3f}")
    below = [s for s in summaries if s["verdict"] == "below"]
    out += ["", f"below the best peer: {len(below)} of {len(summaries)}"
            + ("" if not below else ": " + "; ".join(
                f"{s['data_set']} by {-s['difference']['mean']:.3f} "
                f"({PEER_TITLES[s['best_peer']]})" for s in below)),
            f"({seconds:.0f} s in all, tune trials {args.tune_trials}, bootstrap draws "
            f"{args.bootstrap})"]
    return "\n".join(out)


def to_json(summaries: list[dict], seconds: float, args, complete: bool = True) -> dict:
    import lightgbm
    import sklearn

    return {"complete": complete, "seconds": round(seconds, 1),
            "settings": {k: (str(v) if not isinstance(v, (int, float, bool, list, type(None)))
                             else v) for k, v in vars(args).items()},
            "verdict_rule": ("project - best peer per seed; spread = max(sd over seeds, paired "
                             "bootstrap sd over hold-out rows); above if mean > spread, below if "
                             "mean < -spread, else at"),
            "versions": {"python": platform.python_version(), "lightgbm": lightgbm.__version__,
                         "scikit-learn": sklearn.__version__},
            "data_sets": summaries}

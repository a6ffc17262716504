"""A model card for every registered version: what the model is, on what data, how good, limits."""

from __future__ import annotations

import pandas as pd


def model_card(name: str, version: str, run_id: str, params: dict, metrics: dict,
               baselines: dict[str, dict], verdict: str, importance: pd.Series,
               source: str, selection: dict | None = None) -> str:
    def row(label: str, m: dict) -> str:
        def f(k):
            v = m.get(k)
            return "-" if v is None or v != v else f"{v:.3f}"
        return (f"| {label} | {f('roc_auc')} | {f('pr_auc')} | {f('brier')} | "
                f"{f('calibration_error')} | {f('lift_top10')} | {f('capture_top10')} |")

    lines = [f"# Model card: {name} version {version}", "",
             f"MLflow run `{run_id}`.", "", "## Data", ""]
    if source == "events":
        lines += [f"- Point-in-time features at cutoffs {params.get('cutoffs')}; out-of-time "
                  f"hold-out: {params.get('holdout_cutoffs')}.",
                  f"- Label: {params.get('definition')} churn over {params.get('horizon_days')} "
                  "days after the cutoff.",
                  "- Population: customers signed up before the cutoff and still active by the "
                  "label's definition (non-contractual: an order in the horizon before the "
                  "cutoff; contractual: a contract not cancelled by the cutoff)."]
    else:
        lines += [f"- Table `{params.get('table')}`, id `{params.get('id_column')}`, label "
                  f"`{params.get('label_column')}`, split: {params.get('split')}."]
    training_rows = sum(int(params.get(f"rows_{p}") or 0) for p in ("fit", "valid", "calib"))
    lines += [f"- Rows: training {training_rows}, hold-out {params.get('rows_holdout')}; "
              f"{params.get('features')} features.", ""]
    lines += _selection(selection or {})
    lines += ["## Hold-out performance", "",
              "| model | ROC AUC | PR AUC | Brier | calibration error | lift@10% | capture@10% |",
              "|---|---|---|---|---|---|---|", row("this model", metrics)]
    lines += [row(f"baseline: {k}", v) for k, v in baselines.items()]
    lines += ["", verdict, "", "## What drives it (mean absolute contribution, top 10)", ""]
    lines += [f"- {k}: {v:.3f}" for k, v in importance.sort_values(ascending=False).head(10)
              .items()]
    lines += ["", "## Known limits", "",
              "- Trained on the cutoffs above: customers, products and campaigns change; run "
              "`churn monitor` on new data and retrain when it alerts.",
              "- Probabilities are calibrated on customers of the training period; the hold-out "
              "shows how far that holds one period later.",
              "- Reasons are feature contributions (associations), not causes; offer effects come "
              "from randomised campaigns only, and are shrunk to what held-out campaigns show.",
              "- Features absent from a source (missing optional tables) are missing for every "
              "customer: a model trained with them degrades without them."]
    return "\n".join(lines) + "\n"


def _selection(sel: dict) -> list[str]:
    """Which model family won the cross-validation on the training rows, and by how much."""
    if not sel:
        return []
    family = {"lightgbm": "LightGBM", "linear": "the regularised logistic regression",
              "blend": f"a blend ({sel['tree_weight']:.0%} LightGBM)"}[sel["model_family"]]
    return ["## Model selection", "",
            f"{sel['cv_folds']} {sel['cv_fold_kind']} cross-validation folds on the training rows "
            f"chose {family}: out-of-fold ROC AUC {sel['cv_auc_chosen']:.4f} against LightGBM "
            f"{sel['cv_auc_lightgbm']:.4f} ({sel['lightgbm_settings']} settings, "
            f"{sel['cv_rounds']} rounds) and the linear model {sel['cv_auc_linear']:.4f} "
            f"(C {sel['linear_c']}, {sel['linear_transform']} numbers). The chosen model was "
            "refitted on all training rows and calibrated on the out-of-fold predictions.", ""]

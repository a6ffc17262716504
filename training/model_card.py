"""A model card for every registered version: what the model is, on what data, how good, limits."""

from __future__ import annotations

import pandas as pd


def model_card(name: str, version: str, run_id: str, params: dict, metrics: dict,
               baselines: dict[str, dict], verdict: str, importance: pd.Series,
               source: str) -> str:
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
    lines += [f"- Rows: fit {params.get('rows_fit')}, validation {params.get('rows_valid')}, "
              f"calibration {params.get('rows_calib')}, hold-out {params.get('rows_holdout')}; "
              f"{params.get('features')} features.", "",
              "## Hold-out performance", "",
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

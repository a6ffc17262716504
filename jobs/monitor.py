"""`churn monitor`: drift of new data against the model's reference, and back-tests, as a report.

Exit codes a scheduler can alert on: 0 = no alert, 3 = at least one alert (drift or a back-test
AUC drop), 2 = bad input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.config import LabelConfig
from features.contract import ContractError
from features.errors import BadInput
from features.events import SortedEvents
from features.io import load_crm, read_frame
from features.labels import population_and_label
from jobs.monitor_report import write_report
from jobs.monitoring import (
    DriftReport,
    MonitorConfig,
    backtest,
    campaign_readout,
    drift,
    offer_backtest,
)
from scoring.bands import RiskBands
from scoring.model_store import LoadedModel, experiment_id, load_holdout

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ALERT = 0, 3


@dataclass
class MonitorResult:
    drift: DriftReport
    backtest: dict | None
    holdout_metrics: dict | None
    report: Path
    exit_code: int
    alerts: list[str]
    offers: pd.DataFrame | None = None
    readout: pd.DataFrame | None = None


def reference_frame(model: LoadedModel) -> pd.DataFrame:
    if not model.run_id:
        raise BadInput("the model has no training run to take the reference data from")
    return load_holdout(model.run_id)


def matured_labels(scored: pd.DataFrame, data: Path, label: LabelConfig) -> pd.DataFrame:
    """The labels of an earlier scoring (its ``cutoff``), now that the horizon has passed."""
    crm = load_crm(data)
    cutoff = pd.Timestamp(scored["cutoff"].iloc[0])
    if crm.data_end < cutoff + pd.Timedelta(days=label.horizon_days):
        raise BadInput(f"the labels of the {cutoff.date()} scoring have not matured: the data "
                         f"ends {crm.data_end.date()}, the horizon ends "
                         f"{(cutoff + pd.Timedelta(days=label.horizon_days)).date()}")
    customers = crm.customers.reset_index(drop=True)
    orders = SortedEvents.from_frame(crm.orders, pd.Index(customers["customer_id"]), "order_ts",
                                     [])
    population, y = population_and_label(customers, orders, cutoff, label, crm.data_end)
    labels = pd.DataFrame({"customer_id": customers["customer_id"].astype(str),
                           "label": y, "in_population": population})
    merged = scored.assign(customer_id=scored["customer_id"].astype(str)).merge(
        labels, on="customer_id", how="inner")
    return merged[merged["in_population"]]


def run_monitor(model: LoadedModel, features: Path, report: Path, config: MonitorConfig,
                bands: RiskBands, scored: Path | None = None, data: Path | None = None,
                track: bool = True, campaign_outcomes: Path | None = None) -> MonitorResult:
    scorer = model.scorer
    current = read_frame(features)
    missing = [f for f in scorer.features if f not in current.columns]
    if len(missing) == len(scorer.features):
        raise BadInput(f"{features.name} has none of the model's features "
                         f"(e.g. {scorer.features[:3]})")
    reference = reference_frame(model)
    ref_scores = scorer.predict_frame(reference)
    present = current.reindex(columns=scorer.features)
    cur_scores = scorer.predict_frame(present)
    result = drift(reference, current, scorer.features, scorer.kinds, ref_scores, cur_scores,
                   bands, config)
    alerts = list(result.alerts)
    back, holdout, back_data, offer_table = None, None, None, None
    if scored is not None:
        if data is None:
            raise BadInput("--scored needs --data (the raw CRM data the labels come from)")
        label = LabelConfig(**scorer.meta.get("label", {}))
        matured = matured_labels(read_frame(scored), data, label)
        if matured.empty:
            raise BadInput("none of the scored customers is in the population at its cutoff")
        y, p = matured["label"].to_numpy(float), matured["churn_probability"].to_numpy(float)
        back, back_data = backtest(y, p), (y, p)
        crm_offers = load_crm(data).offers
        if crm_offers is not None and "offer_churn_reduction" in matured.columns:
            from scoring.offers.catalogue import load_catalogue

            costs = {o.id: o.cost for o in load_catalogue().offers}
            offer_table = offer_backtest(matured, crm_offers,
                                         pd.Timestamp(matured["cutoff"].iloc[0]), costs)
        holdout = MlflowClient().get_run(model.run_id).data.metrics
        if "roc_auc" in holdout and back["roc_auc"] < holdout["roc_auc"] - config.auc_drop_alert:
            alerts.append(f"back-test ROC AUC {back['roc_auc']:.3f} is more than "
                          f"{config.auc_drop_alert} below the hold-out's {holdout['roc_auc']:.3f}")
    result.alerts = alerts
    readout = calibration = None
    if campaign_outcomes is not None:
        from scoring.offers.catalogue import load_catalogue

        readout, calibration = campaign_readout(read_frame(campaign_outcomes), load_catalogue(),
                                                source=campaign_outcomes.name)
    write_report(report, f"Churn model {model.name} v{model.version}", result, reference,
                 current, ref_scores, cur_scores, config, back, holdout, back_data, offer_table,
                 readout, calibration)
    code = EXIT_ALERT if alerts else EXIT_OK
    if track:
        with mlflow.start_run(experiment_id=experiment_id("churn-monitoring"),
                              run_name=f"monitor {features.name}"):
            mlflow.log_params({"model_uri": model.uri, "features": str(features),
                               "scored": str(scored or "")})
            metrics = {"score_psi": result.score_psi, "alerts": len(alerts),
                       "warnings": len(result.warnings),
                       "max_feature_psi": float(result.features["psi"].max())}
            metrics.update({f"band_share.{k}": v for k, v in result.bands_cur.items()})
            if back:
                metrics.update({f"backtest.{k}": v for k, v in back.items() if np.isfinite(v)})
            if offer_table is not None:
                for _, r in offer_table.iterrows():
                    for k in ("expected_churn_cut", "realised_churn_cut",
                              "expected_net_per_offer", "realised_net_per_offer"):
                        if np.isfinite(r[k]):
                            metrics[f"offers.{r['offer_id']}.{k}"] = float(r[k])
            if readout is not None:
                for _, r in readout.iterrows():
                    for k in ("realised_cut", "ci_low", "ci_high", "predicted_cut"):
                        if k in r and np.isfinite(r[k]):
                            metrics[f"readout.{r['offer_id']}.{k}"] = float(r[k])
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(report))
    return MonitorResult(result, back, holdout, report, code, alerts, offer_table, readout)


__all__ = ["run_monitor", "MonitorConfig", "ContractError"]

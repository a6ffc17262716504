"""Baselines trained and scored on the same hold-out as the model, so the comparison is fair.

- recency rule (event path): the longer since the last order, the higher the risk;
- logistic regression on RFM features (event path) or on every column (table path).
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.spec import CATEGORY
from training.dataset import CALIB, FIT, HOLDOUT, VALID, TrainingData


def recency_rule(data: TrainingData) -> np.ndarray | None:
    """Hold-out scores of the rule 'risk grows with days since the last order' (rank only)."""
    if "recency_days" not in data.features:
        return None
    j = data.features.index("recency_days")
    x = data.x[data.rows(HOLDOUT), j]
    return np.where(np.isnan(x), np.nanmax(x) + 1 if np.isfinite(x).any() else 0, x)


def _logistic(data: TrainingData, columns: list[int]):
    numeric = [j for j in columns if data.kinds[j] != CATEGORY]
    cats = [j for j in columns if data.kinds[j] == CATEGORY]
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                           StandardScaler()), numeric))
    if cats:
        parts.append(("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value=-1),
                                           OneHotEncoder(handle_unknown="ignore")), cats))
    model = make_pipeline(ColumnTransformer(parts), LogisticRegression(max_iter=2000, C=1.0))
    train = data.rows(FIT) | data.rows(VALID) | data.rows(CALIB)
    x = np.where(np.isinf(data.x), np.nan, data.x)
    model.fit(x[train], data.y[train])
    return model.predict_proba(x[data.rows(HOLDOUT)])[:, 1]


RANK_ONLY = {"recency_rule"}  # gives an order, not probabilities
RFM_PREFIXES = ("recency_days", "tenure_days", "orders_", "spend_", "avg_order_value",
                "interpurchase_days", "overdue_ratio")


def logistic_rfm(data: TrainingData) -> np.ndarray | None:
    columns = [j for j, f in enumerate(data.features) if f.startswith(RFM_PREFIXES)]
    return _logistic(data, columns) if columns else None


def logistic_all(data: TrainingData) -> np.ndarray:
    return _logistic(data, list(range(len(data.features))))


def baseline_scores(data: TrainingData) -> dict[str, np.ndarray]:
    """Hold-out scores of each baseline that applies to this data."""
    if data.source == "events":
        out = {"recency_rule": recency_rule(data), "logistic_rfm": logistic_rfm(data)}
    else:
        out = {"logistic_regression": logistic_all(data)}
    return {k: v for k, v in out.items() if v is not None}

"""The peers a data scientist would try first, written without the project's code.

Every function takes training rows and hold-out rows and returns hold-out scores where a higher
score means a higher risk of the event (churn, attrition, default).

- ``logistic``: logistic regression, categories one-hot, numbers median-imputed and standardised;
- ``lgbm_default``: ``lightgbm.LGBMClassifier()`` with its defaults (categories as pandas
  categories, which LightGBM splits natively);
- ``event_counts``: per event table and per event type, counts and value sums over 30/90/365
  days and days since the last one, plus tenure and the customers' static columns (a hand-rolled
  featuretools/tsfresh-style table), then ``lgbm_default``;
- ``bg_nbd``: BG/NBD (``lifetimes``) fitted on every order before the cutoff; P(alive) and the
  expected number of orders over the horizon;
- ``recency``: days since the last order.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features.crm import CrmData

DAY = np.timedelta64(1, "D")
COUNT_WINDOWS = (30, 90, 365)
# per event table: its time column, the column whose values are event types (None = one type)
# and the numeric value summed per window
EVENT_TABLES = {
    "orders": ("order_ts", None, "amount"),
    "engagement": ("event_ts", "event_type", "value"),
    "tickets": ("opened_ts", "category", None),
    "surveys": ("response_ts", "kind", "score"),
    "offers": ("sent_ts", "offer_id", None),
}


def _as_model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Text and boolean columns as categories (shared codes for training and hold-out)."""
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if values.dtype == bool or pd.api.types.is_bool_dtype(values):
            out[col] = values.astype("float64")
        elif not pd.api.types.is_numeric_dtype(values):
            out[col] = values.astype("string").astype("category")
    return out


def logistic(x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame) -> np.ndarray:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    both = _as_model_frame(pd.concat([x_train, x_test], ignore_index=True))
    both = both.replace([np.inf, -np.inf], np.nan)
    cats = [c for c in both.columns if isinstance(both[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in both.columns if c not in cats and both[c].notna().any()]
    for c in cats:
        both[c] = both[c].astype(object).where(both[c].notna(), "(missing)")
    parts = []
    if nums:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                      nums))
    if cats:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"), cats))
    model = make_pipeline(ColumnTransformer(parts), LogisticRegression(max_iter=3000))
    n = len(x_train)
    model.fit(both.iloc[:n], y_train)
    return model.predict_proba(both.iloc[n:])[:, 1]


def lgbm_default(x_train: pd.DataFrame, y_train: np.ndarray, x_test: pd.DataFrame) -> np.ndarray:
    import lightgbm as lgb

    both = _as_model_frame(pd.concat([x_train, x_test], ignore_index=True))
    n = len(x_train)
    model = lgb.LGBMClassifier(verbose=-1, n_jobs=1)  # the defaults; quiet, one thread
    model.fit(both.iloc[:n], y_train)
    return model.predict_proba(both.iloc[n:])[:, 1]


def event_count_features(crm: CrmData, rows: pd.DataFrame,
                         windows: tuple[int, ...] = COUNT_WINDOWS) -> pd.DataFrame:
    """For each (customer_id, cutoff) row: counts and value sums per table, type and window,
    days since the last event of each type, tenure and the static customer columns."""
    out = []
    static = crm.customers.set_index("customer_id")
    static_cols = [c for c in static.columns if c not in ("signup_date", "cancel_date")]
    for cutoff, keys in rows.groupby("cutoff", sort=True):
        cut = np.datetime64(pd.Timestamp(cutoff).to_datetime64(), "ns")
        ids = pd.Index(keys["customer_id"].to_numpy())
        parts = {}
        for table, (time_col, type_col, value_col) in EVENT_TABLES.items():
            frame = getattr(crm, table)
            if frame is None or time_col not in frame.columns:
                continue
            ts = frame[time_col].to_numpy("datetime64[ns]")
            before = ts < cut
            if not before.any():
                continue
            cust = ids.get_indexer(frame["customer_id"].to_numpy()[before])
            known = cust >= 0
            cust = cust[known]
            age = ((cut - ts[before]) / DAY)[known]
            if type_col and type_col in frame.columns:
                kinds = frame[type_col].astype("string").fillna("(none)").to_numpy()[before][known]
                names, code = np.unique(kinds, return_inverse=True)
            else:
                names, code = np.array([table]), np.zeros(len(cust), dtype=np.int64)
            value = (frame[value_col].to_numpy(np.float64, na_value=np.nan)[before][known]
                     if value_col and value_col in frame.columns else None)
            key = cust * len(names) + code
            size = len(ids) * len(names)
            for w in windows:
                inside = age < w
                counts = np.bincount(key[inside], minlength=size).reshape(len(ids), -1)
                sums = (np.bincount(key[inside], weights=np.nan_to_num(value[inside]),
                                    minlength=size).reshape(len(ids), -1)
                        if value is not None else None)
                for j, name in enumerate(names):
                    label = _safe(f"{table}_{name}") if type_col else table
                    parts[f"{label}__count_{w}d"] = counts[:, j]
                    if sums is not None and np.isfinite(value[code == j]).any():
                        parts[f"{label}__value_{w}d"] = sums[:, j]
            last = np.full(size, np.inf)
            np.minimum.at(last, key, age)
            last = last.reshape(len(ids), -1)
            for j, name in enumerate(names):
                label = _safe(f"{table}_{name}") if type_col else table
                parts[f"{label}__days_since_last"] = np.where(np.isinf(last[:, j]), np.nan,
                                                             last[:, j])
        frame = pd.DataFrame(parts, index=keys.index)
        signup = static["signup_date"].reindex(ids).to_numpy("datetime64[ns]")
        frame["tenure_days"] = (cut - signup) / DAY
        for col in static_cols:
            frame[col] = static[col].reindex(ids).to_numpy()
        out.append(frame)
    # event types absent before an early cutoff are absent from its frame: zero counts there
    features = pd.concat(out).reindex(rows.index)
    for col in features.columns:
        if "__count_" in col or "__value_" in col:
            features[col] = features[col].fillna(0.0)
    return features


def _safe(name: str) -> str:
    """A column name LightGBM accepts (no JSON punctuation)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def recency(orders: pd.DataFrame, ids: np.ndarray, cutoff: pd.Timestamp,
            signup: pd.Series) -> np.ndarray:
    """Days since the last order before the cutoff (no order yet: days since signup + 1)."""
    past = orders[orders["order_ts"] < cutoff]
    last = past.groupby("customer_id")["order_ts"].max().reindex(ids)
    days = ((cutoff - last) / pd.Timedelta(days=1)).to_numpy(np.float64)
    never = ((cutoff - signup.reindex(ids)) / pd.Timedelta(days=1)).to_numpy(np.float64) + 1
    return np.where(np.isnan(days), never, days)


def bg_nbd(orders: pd.DataFrame, ids: np.ndarray, cutoff: pd.Timestamp, horizon_days: int,
           signup: pd.Series) -> dict[str, np.ndarray]:
    """BG/NBD on every order before the cutoff, in days; scores are risks (1 - P(alive) and
    minus the expected orders in the horizon). Customers with no order yet get frequency 0,
    recency 0 and T = days since signup."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    past = orders.loc[orders["order_ts"] < cutoff, ["customer_id", "order_ts"]]
    end = cutoff - pd.Timedelta(days=1)
    summary = summary_data_from_transaction_data(past, "customer_id", "order_ts",
                                                 observation_period_end=end, freq="D")
    bgf = BetaGeoFitter(penalizer_coef=0.001).fit(summary["frequency"], summary["recency"],
                                                  summary["T"])
    s = summary.reindex(ids)
    t_new = ((end - signup.reindex(ids)) / pd.Timedelta(days=1)).to_numpy(np.float64)
    freq = s["frequency"].fillna(0).to_numpy(np.float64)
    rec = s["recency"].fillna(0).to_numpy(np.float64)
    age = np.where(s["T"].isna(), np.maximum(t_new, 0), s["T"].to_numpy(np.float64))
    alive = bgf.conditional_probability_alive(freq, rec, age)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(horizon_days, freq, rec,
                                                                       age)
    return {"bgnbd_p_alive": 1 - np.asarray(alive, np.float64),
            "bgnbd_expected": -np.asarray(expected, np.float64)}

"""The MLflow pyfunc wrapper around a ChurnScorer: returns calibrated churn probabilities.

``mlflow.pyfunc.load_model``, ``mlflow models serve`` and ``mlflow.pyfunc.spark_udf`` work on it,
also in an environment that has only MLflow and the model's own requirements: the packages the
pickled wrapper imports (``MODEL_CODE``) travel inside the model as ``code_paths``, and its
third-party imports (``MODEL_PACKAGES``) are its pinned requirements. The online service does not
call it per request (it loads the ChurnScorer inside and calls the booster with numpy).
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema

from features.spec import CATEGORY
from scoring.scorer import ChurnScorer

SCORER_ARTIFACT = "scorer"
UPLIFT_ARTIFACT = "uplift"
HOLDOUT_ARTIFACT = "holdout/holdout.parquet"  # the training run's scored hold-out rows
OUTPUT_COLUMN = "churn_probability"

# What loading this wrapper imports (tests/scoring/test_portable_model.py checks both against the
# import graph): our packages, copied into the model, and the distributions it needs installed
# (cloudpickle: the wrapper is pickled with it and must be read back by the same version).
MODEL_CODE = ("features", "scoring")
MODEL_PACKAGES = ("mlflow", "cloudpickle", "lightgbm", "numba", "numpy", "pandas", "pyarrow",
                  "pydantic", "scipy")


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.scorer = ChurnScorer.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({OUTPUT_COLUMN: self.scorer.predict_frame(model_input)},
                            index=model_input.index)


def model_signature(scorer: ChurnScorer) -> ModelSignature:
    """Every feature column, in training order, as the scorer reads it: numbers as doubles,
    categories as strings; each column must be present, a value may be missing (null)."""
    inputs = Schema([ColSpec(DataType.string if kind == CATEGORY else DataType.double, name)
                     for name, kind in zip(scorer.features, scorer.kinds, strict=True)])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(DataType.double, OUTPUT_COLUMN)]))


def model_input_frame(scorer: ChurnScorer, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as the signature expects: float64 numbers, object strings (None when
    missing)."""
    out = {}
    for name, kind in zip(scorer.features, scorer.kinds, strict=True):
        values = frame[name]
        if kind == CATEGORY:  # as text, the way the scorer matches categories
            out[name] = pd.Series([None if pd.isna(v) else str(v) for v in values],
                                  index=frame.index, dtype="object")
        else:
            out[name] = pd.to_numeric(values.astype("float64") if pd.api.types.is_bool_dtype(values)
                                      else values, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=frame.index)

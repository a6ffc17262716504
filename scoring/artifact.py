"""The MLflow pyfunc wrapper around a ChurnScorer: returns calibrated churn probabilities.

``mlflow.pyfunc.load_model`` and ``mlflow.pyfunc.spark_udf`` work on it; the online service does
not call it per request (it loads the ChurnScorer inside and calls the booster with numpy).
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from scoring.scorer import ChurnScorer

SCORER_ARTIFACT = "scorer"
UPLIFT_ARTIFACT = "uplift"
HOLDOUT_ARTIFACT = "holdout/holdout.parquet"  # the training run's scored hold-out rows


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.scorer = ChurnScorer.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": self.scorer.predict_frame(model_input)},
                            index=model_input.index)

"""The obvious alternative for the serving benchmark: a bare BentoML endpoint that runs the same
LightGBM booster on a feature vector sent in the request (no store, no reasons, no offers, no
auth)."""

from __future__ import annotations

import os

import bentoml
import lightgbm as lgb
import numpy as np


@bentoml.service(name="bare", traffic={"timeout": 30})
class BareBooster:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["BARE_BOOSTER"])

    @bentoml.api(route="/predict")
    def predict(self, features: list[list[float | None]]) -> list[float]:
        x = np.array([[np.nan if v is None else v for v in row] for row in features], dtype=float)
        return self.booster.predict(x, num_threads=1).tolist()

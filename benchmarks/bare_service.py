"""The obvious alternative for the serving benchmark: a bare BentoML endpoint that runs the same
LightGBM booster on a feature vector sent in the request (no store, no reasons, no offers, no
auth). With ``BARE_FIXES=1`` it gets the same two BentoML fixes as the churn service (request
timers cancelled, the loaded heap frozen out of the garbage collector), so the comparison is fair
both ways. With ``BARE_ASYNC=1`` its API is ``async`` (run on the event loop, no hand-off to a
thread), as the churn service's is: to see how much of a difference that alone makes."""

from __future__ import annotations

import gc
import os

import bentoml
import lightgbm as lgb
import numpy as np

FIXES = os.environ.get("BARE_FIXES") == "1"
ASYNC = os.environ.get("BARE_ASYNC") == "1"
if FIXES:
    from serving.bentoml_fixes import cancel_request_timers

    cancel_request_timers()


@bentoml.service(name="bare", traffic={"timeout": 30})
class BareBooster:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["BARE_BOOSTER"])
        if FIXES:
            gc.collect()
            gc.freeze()

    def _predict(self, features: list[list[float | None]]) -> list[float]:
        x = np.array([[np.nan if v is None else v for v in row] for row in features], dtype=float)
        return self.booster.predict(x, num_threads=1).tolist()

    if ASYNC:
        @bentoml.api(route="/predict")
        async def predict(self, features: list[list[float | None]]) -> list[float]:
            return self._predict(features)
    else:
        @bentoml.api(route="/predict")
        def predict(self, features: list[list[float | None]]) -> list[float]:
            return self._predict(features)

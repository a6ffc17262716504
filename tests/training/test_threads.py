"""Training's thread count: by default LightGBM follows OpenMP's (``OMP_NUM_THREADS``, else one
per core), so `make test`'s two workers (one OpenMP thread each) and a user's scheduler can bound
it; the settings file can still set it. Counted from /proc in a fresh process, since OpenMP reads
the variable once, when it loads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
    import os, sys
    import lightgbm as lgb
    import numpy as np
    from training.config import LightGBMConfig
    from training.model import _params

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20))
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(float)
    threads = int(sys.argv[1])
    params = _params(LightGBMConfig(**({"threads": threads} if threads else {})), 0, y)
    seen = []
    lgb.train(params, lgb.Dataset(x, y), num_boost_round=5,
              callbacks=[lambda env: seen.append(len(os.listdir("/proc/self/task")))])
    print(max(seen))
"""


def _threads_while_training(omp: str, configured: int = 0) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": omp, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(configured)],
                         env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
def test_training_follows_omp_num_threads_unless_the_settings_say_otherwise():
    # in each pair only LightGBM's setting differs (OpenBLAS also follows OMP_NUM_THREADS): an
    # OpenMP team of n is the calling thread and n - 1 more
    assert _threads_while_training("1", configured=3) - _threads_while_training("1") == 2
    assert _threads_while_training("3") - _threads_while_training("3", configured=1) == 2

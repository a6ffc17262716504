"""`bentoml build` of the project's bentofile succeeds offline (no package locking)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bentoml_build_succeeds_without_reaching_the_network(tmp_path):
    spec = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert spec["service"] == "serving.service:ChurnService"
    assert spec["python"]["lock_packages"] is False
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    bentoml = Path(sys.executable).parent / "bentoml"
    result = subprocess.run([str(bentoml), "build", str(ROOT)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "churn").iterdir())
    assert bentos, "no bento was written"
    built = next(b for b in bentos if b.is_dir())
    assert (built / "src" / "serving" / "service.py").exists()
    assert (built / "src" / "scoring" / "offers" / "catalogue.yaml").exists()

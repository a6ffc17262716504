"""The one-way house: features <- scoring <- {training | serving | jobs} <- churn.

The contract lives in pyproject.toml ([tool.importlinter]) and import-linter checks it. The second
test proves the check can fail: a copy of the packages with one forbidden import is rejected.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["features", "scoring", "training", "serving", "jobs", "churn"]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, capture_output=True, text=True,
                          timeout=120)


def _copy_tree(dst: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_project_keeps_the_import_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("serving/settings.py", "import training.config"),   # serving must not use training
    ("training/model.py", "import jobs.batch"),          # siblings stay apart
    ("scoring/core.py", "import serving.middleware"),    # the core knows nothing of HTTP
    ("features/spec.py", "import scoring.scorer"),       # features is the bottom layer
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, forbidden):
    tree = _copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{forbidden}  # added by the test\n")
    result = _lint(tree)
    assert result.returncode != 0, f"{forbidden} in {module} was not caught:\n{result.stdout}"
    assert "BROKEN" in result.stdout and forbidden.split()[1] in result.stdout, result.stdout[-3000:]

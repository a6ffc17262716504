"""One pin list: every import is declared in pyproject.toml with a loose bound, constraints.txt
pins each declared package to a version that satisfies it, and the bento and the logged MLflow
model take their pins from constraints.txt and cover what they import."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from scoring.artifact import MODEL_CODE, MODEL_PACKAGES
from training.tracking import canonical, model_requirements, read_constraints

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "scoring", "training", "serving", "jobs", "churn")
OPTIONAL = {"pyspark": "spark", "py4j": "spark"}  # imported only by the Spark jobs
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PINS = read_constraints(ROOT / "constraints.txt")


def _requirements(extra: str | None = None) -> list[Requirement]:
    lines = (PYPROJECT["dependencies"] if extra is None
             else PYPROJECT["optional-dependencies"][extra])
    return [Requirement(line) for line in lines]


def _imports(files) -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in ``files`` (in functions too) ->
    the files that import them."""
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in PACKAGES:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _graph():
    import grimp

    return grimp.build_graph(*PACKAGES, include_external_packages=True)


def _distributions(module: str) -> set[str]:
    dists = _providers().get(module)
    assert dists, f"no installed distribution provides the module {module!r}"
    return {canonical(d) for d in dists}


def _closure(*roots: str) -> tuple[set[str], set[str]]:
    """What importing ``roots`` loads: (our modules, third-party top-level modules), parents'
    ``__init__`` imports included."""
    graph = _graph()
    ours, seen = set(), list(roots)
    while seen:
        module = seen.pop()
        if module in ours:
            continue
        ours.add(module)
        parts = module.split(".")
        seen += [".".join(parts[:i]) for i in range(1, len(parts))]
        seen += [m for m in graph.find_modules_directly_imported_by(module)
                 if m.split(".")[0] in PACKAGES]
    external = {m.split(".")[0] for o in ours for m in graph.find_modules_directly_imported_by(o)
                if m.split(".")[0] not in PACKAGES}
    return ours, {m for m in external if m not in sys.stdlib_module_names}


def test_every_third_party_import_is_declared_in_pyproject():
    core = {canonical(r.name) for r in _requirements()}
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    problems = []
    for module, where in sorted(_imports(files).items()):
        declared = ({canonical(r.name) for r in _requirements(OPTIONAL[module])}
                    if module in OPTIONAL else core)
        if not _distributions(module) & declared:
            extra = f"the [{OPTIONAL[module]}] extra" if module in OPTIONAL else "dependencies"
            problems.append(f"{module} (imported in {', '.join(sorted(where)[:3])}) is not in "
                            f"{extra} of pyproject.toml")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("extra", [None, *PYPROJECT["optional-dependencies"]])
def test_each_declared_dependency_is_loose_and_pinned_in_constraints(extra):
    problems = []
    for req in _requirements(extra):
        if canonical(req.name) == canonical(PYPROJECT["name"]):
            continue  # the dev extra pulls in the other extras
        if any(s.operator in ("==", "===") for s in req.specifier):
            problems.append(f"{req}: pyproject.toml takes bounds, exact pins go to constraints.txt")
        pin = PINS.get(canonical(req.name))
        if pin is None:
            problems.append(f"{req}: no exact pin in constraints.txt")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req}: constraints.txt pins {pin}, outside the declared range")
    assert not problems, "\n".join(problems)


def test_bentoml_cannot_resolve_to_an_old_release():
    bentoml = next(r for r in _requirements() if r.name == "bentoml")
    assert not bentoml.specifier.contains("0.9.0") and not bentoml.specifier.contains("1.4.36")
    assert bentoml.specifier.contains("1.4.37")


def test_the_bento_pins_what_the_service_imports_at_the_constraints_versions():
    spec = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    packages = [Requirement(p) for p in spec["python"]["packages"]]
    problems = [f"{r}: constraints.txt pins {PINS.get(canonical(r.name))}" for r in packages
                if str(r.specifier) != f"=={PINS.get(canonical(r.name))}"]
    pinned = {canonical(r.name) for r in packages}
    _, external = _closure("serving.service")
    problems += [f"serving.service imports {m}, which the bento does not install"
                 for m in sorted(external) if not _distributions(m) & pinned]
    assert not problems, "\n".join(problems)


def test_the_mlflow_model_carries_the_code_and_packages_its_wrapper_imports():
    ours, external = _closure("scoring.artifact")
    assert {m.split(".")[0] for m in ours} <= set(MODEL_CODE), sorted(ours)
    packages = {canonical(p) for p in MODEL_PACKAGES}
    missing = [m for m in sorted(external) if not _distributions(m) & packages]
    assert not missing, f"the pyfunc imports {missing}, not in MODEL_PACKAGES"


def test_model_requirements_come_from_constraints(tmp_path):
    requirements = model_requirements(tmp_path)
    assert requirements[-1] == f"-c {tmp_path / 'constraints.txt'}"
    for line in requirements[:-1]:
        name, version = line.split("==")
        assert PINS[canonical(name)] == version, line
    # the model's constraints: the pins of what its packages pull in, nothing else
    own = read_constraints(tmp_path / "constraints.txt")
    assert all(PINS[name] == version for name, version in own.items())
    assert {"mlflow-skinny", "pyarrow", "llvmlite", "pydantic-core"} <= set(own)
    assert not {"pytest", "bentoml", "pyspark", "ruff"} & set(own)
    # a constraints file that lacks a pin the model needs is an error, not a silent float
    partial = tmp_path / "partial.txt"
    partial.write_text("mlflow==3.17.2\n")
    with pytest.raises(ValueError, match="no pin for"):
        model_requirements(tmp_path, constraints=partial)


def test_constraints_hold_exact_pins_only(tmp_path):
    loose = tmp_path / "constraints.txt"
    loose.write_text("# a comment\nnumpy==2.4.6\npandas>=3\n")
    with pytest.raises(ValueError, match="pandas>=3"):
        read_constraints(loose)

"""The registered champion is a complete MLflow model: it loads, serves and scores on Spark where
only MLflow and the model's own requirements are installed (a fresh virtualenv made here, with
nothing of this project in it), and gives the project's probabilities.

The virtualenv is made once per test run under pytest's tmp folder with ``uv pip install -r
<the model's requirements.txt>`` (pip where uv fails: the same versions, ten times slower), which
pins through the model's own copy of constraints.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.spec import CATEGORY
from scoring.artifact import MODEL_CODE, MODEL_PACKAGES, OUTPUT_COLUMN
from scoring.model_store import load_scorer
from scoring.scorer import ChurnScorer
from tests.conftest import register_copy, running_server
from tests.ports import free_port
from training.dataset import HOLDOUT
from training.tracking import canonical, model_input_frame, read_constraints

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-6


@dataclass
class Champion:
    name: str
    uri: str
    scorer: ChurnScorer  # as the project loads it
    inputs: pd.DataFrame  # hold-out rows as the signature asks for them
    expected: np.ndarray  # the project's probabilities for them
    model_dir: Path  # the registered model, downloaded


@pytest.fixture(scope="module")
def champion(trained, training_data, tmp_path_factory) -> Champion:
    """The run's shared training (tests/conftest.py's ``trained``: the real pipeline, offer
    effects included, logged to the real tracking server), registered again under a name of this
    test's own and promoted there, so no other test's promotion moves it."""
    from training.registry import promote
    from training.tracking import CHALLENGER

    url, name = trained["tracking_uri"], f"churn_portable_{uuid.uuid4().hex[:8]}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    mlflow.set_tracking_uri(url)
    try:
        version = register_copy(url, "churn", trained["result"].model_version, new_name=name)
        mlflow.MlflowClient().set_registered_model_alias(name, CHALLENGER, version)
        assert promote(name).promoted
        uri = f"models:/{name}@champion"
        scorer = load_scorer(uri).scorer
        model_dir = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(tmp_path_factory.mktemp("champion"))))
    finally:
        mlflow.set_tracking_uri(None)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
    rows = training_data.frame[training_data.rows(HOLDOUT)].head(300)
    inputs = model_input_frame(scorer, rows).reset_index(drop=True)
    return Champion(name, uri, scorer, inputs, scorer.predict_frame(rows), model_dir)


@dataclass
class Venv:
    python: Path
    bin: Path
    env: dict  # for its processes: no PYTHONPATH, MLflow pointed at the server
    install_seconds: float


@pytest.fixture(scope="module")
def model_venv(champion, mlflow_server, tmp_path_factory) -> Venv:
    """A fresh virtualenv with only what the model's requirements.txt asks for (MLflow among
    them), every version from the model's constraints.txt (the project's, copied at logging)."""
    root = tmp_path_factory.mktemp("model-venv")
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    requirements = str(champion.model_dir / "requirements.txt")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "-r", requirements]
    uv = Path(sys.executable).with_name("uv")  # BentoML's dependency: about 10x quicker than pip
    install = None
    if uv.exists():
        install = subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python),
                                  "-r", requirements], capture_output=True, text=True,
                                 timeout=1800, cwd=root)
        if install.returncode:  # e.g. uv cannot reach the index pip is configured with
            print(f"\nuv could not install the model's requirements, pip will:\n"
                  f"{install.stderr[-1000:]}")
    if install is None or install.returncode:
        install = subprocess.run(pip, capture_output=True, text=True, timeout=1800, cwd=root)
    assert install.returncode == 0, install.stderr[-3000:]
    seconds = time.monotonic() - start
    print(f"\nfresh model virtualenv: made and installed in {seconds:.0f} s")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(MLFLOW_TRACKING_URI=mlflow_server, MLFLOW_DISABLE_TELEMETRY="true",
               VIRTUAL_ENV=str(root / "venv"),
               PATH=f"{root / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return Venv(python, root / "venv" / "bin", env, seconds)


def test_the_logged_model_carries_its_code_pins_signature_and_example(champion):
    """What makes it loadable elsewhere is in the model: code, exact pins from constraints.txt,
    a signature of every feature, and an input example that fits it."""
    conf = mlflow.models.Model.load(str(champion.model_dir / "MLmodel"))
    code = champion.model_dir / conf.flavors["python_function"]["code"]
    for package in MODEL_CODE:
        assert (code / package / "__init__.py").exists(), f"{package} is not in the model's code"
    assert not list(code.rglob("__pycache__")), "caches were copied into the model"

    pins = read_constraints()
    requirements = [line.strip() for line in
                    (champion.model_dir / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert "-c constraints.txt" in requirements, requirements
    own = read_constraints(champion.model_dir / "constraints.txt")
    assert {canonical(p) for p in MODEL_PACKAGES} <= set(own)
    assert all(pins[name] == version for name, version in own.items()), own
    logged = dict(line.split("==", 1) for line in requirements if not line.startswith("-"))
    assert {canonical(n) for n in logged} == {canonical(p) for p in MODEL_PACKAGES}, requirements
    for name, version in logged.items():
        assert pins[canonical(name)] == version, f"{name}=={version}, constraints.txt has " \
                                                 f"{pins[canonical(name)]}"

    signature = conf.signature
    assert signature.inputs.input_names() == champion.scorer.features
    for spec in signature.inputs.inputs:
        kind = champion.scorer.kinds[champion.scorer.features.index(spec.name)]
        assert spec.type.name == ("string" if kind == CATEGORY else "double"), spec
    assert signature.outputs.input_names() == [OUTPUT_COLUMN]
    example = json.loads((champion.model_dir / conf.saved_input_example_info["artifact_path"])
                         .read_text())
    assert example["columns"] == champion.scorer.features


def _run(venv: Venv, script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv.python), "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=venv.env, cwd=cwd, timeout=600)


def test_load_model_in_a_fresh_virtualenv_gives_the_projects_probabilities(
        champion, model_venv, tmp_path):
    champion.inputs.to_parquet(tmp_path / "inputs.parquet")
    script = """
        import importlib.util, json, sys
        import mlflow, pandas as pd
        from mlflow.models import validate_serving_input
        from mlflow.models.utils import load_serving_example
        # nothing of the project is installed here: the code must come from the model
        before = {p: importlib.util.find_spec(p) is not None for p in ("features", "scoring",
                                                                       "training", "churn")}
        uri = sys.argv[1]
        model = mlflow.pyfunc.load_model(uri)
        out = model.predict(pd.read_parquet("inputs.parquet"))
        out.to_parquet("out.parquet")
        example = validate_serving_input(uri, load_serving_example(uri))
        import scoring
        print(json.dumps({"before": before, "scoring": scoring.__file__,
                          "example_rows": len(example)}))
    """
    result = _run(model_venv, script, tmp_path, champion.uri)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mismatches" not in result.stderr, result.stderr[-3000:]  # the venv is the model's
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not any(report["before"].values()), report["before"]
    assert "/code/scoring/" in report["scoring"], report["scoring"]
    assert report["example_rows"] == 5
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == [OUTPUT_COLUMN]
    np.testing.assert_allclose(out[OUTPUT_COLUMN].to_numpy(), champion.expected, rtol=0,
                               atol=TOLERANCE)


def test_mlflow_models_serve_from_the_fresh_virtualenv_answers_one_request(
        champion, model_venv, tmp_path):
    port = free_port()
    cmd = [str(model_venv.bin / "mlflow"), "models", "serve", "-m", champion.uri,
           "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]
    env = {**model_venv.env, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with running_server(cmd, "/ping", port, tmp_path / "serve.log", env=env, cwd=str(tmp_path),
                        timeout=240) as url:
        body = '{"dataframe_split": ' + champion.inputs.to_json(orient="split", index=False) + "}"
        request = urllib.request.Request(url + "/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            answer = json.loads(response.read())
    got = np.array([row[OUTPUT_COLUMN] for row in answer["predictions"]], dtype=np.float64)
    np.testing.assert_allclose(got, champion.expected, rtol=0, atol=TOLERANCE)


def test_spark_udf_on_local_spark_gives_the_projects_probabilities(
        champion, model_venv, tracking_server, tmp_path, monkeypatch):
    """Spark's Python workers run the fresh virtualenv's Python, started from a folder without the
    project, so the model's own code is all they have."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from jobs.spark_session import SparkOptions, spark_session, stop_session

    monkeypatch.chdir(tmp_path)
    try:
        # local Python workers start in the JVM's folder, which is the repository when an earlier
        # test started the JVM: PYTHONSAFEPATH keeps that folder off their path, so the model's
        # own code is all they can import
        stop_session()
        spark = spark_session(SparkOptions(master="local[2]", python=str(model_venv.python),
                                           conf=(("spark.executorEnv.PYTHONSAFEPATH", "1"),)))

        def probe(_):
            import importlib.util
            import sys as _sys

            yield _sys.executable, importlib.util.find_spec("scoring") is not None

        workers = spark.sparkContext.parallelize([0, 1], 2).mapPartitions(probe).collect()
        assert workers == [(str(model_venv.python), False)] * 2, workers
        fields = [T.StructField("row", T.LongType(), False)] + [
            T.StructField(name, T.StringType() if kind == CATEGORY else T.DoubleType(), True)
            for name, kind in zip(champion.scorer.features, champion.scorer.kinds, strict=True)]
        rows = champion.inputs.astype(object).where(champion.inputs.notna(), None)
        data = [(i, *values) for i, values in enumerate(rows.itertuples(index=False, name=None))]
        frame = spark.createDataFrame(data, T.StructType(fields))
        udf = mlflow.pyfunc.spark_udf(spark, champion.uri, result_type="double",
                                      env_manager="local")
        scored = (frame.withColumn("p", udf(*[F.col(n) for n in champion.scorer.features]))
                  .select("row", "p").orderBy("row").toPandas())
    finally:
        stop_session()  # the next test's session gets the project's Python again
    assert scored["row"].tolist() == list(range(len(champion.inputs)))
    np.testing.assert_allclose(scored["p"].to_numpy(), champion.expected, rtol=0,
                               atol=TOLERANCE)

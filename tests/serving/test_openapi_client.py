"""The deployed service as a CRM developer meets it: the OpenAPI page of the real running server,
and the Python client example of docs/python-client.md run as it is written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import API_KEYS
from tests.serving.conftest import REPO, churn_serve, http, worktree_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(served):
    env = {k: v for k, v in served.items() if k.isupper()}
    server = churn_serve(Path(served["root"]), env, workers=1, name="openapi-client")
    server.start()
    yield server.url
    server.stop()


def _schema(spec: dict, node: dict) -> dict:
    """Follow a ``$ref`` inside the OpenAPI document."""
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        node = spec
        for part in path:
            node = node[part]
    return node


def test_the_openapi_document_lists_the_scoring_route_without_a_key(service):
    status, spec, headers = http(service, "/docs.json", key=None)
    assert status == 200 and headers["content-type"].startswith("application/json"), spec
    assert spec["openapi"].startswith("3."), spec.get("openapi")
    assert "post" in spec["paths"]["/score"], sorted(spec["paths"])
    post = spec["paths"]["/score"]["post"]
    request = _schema(spec, post["requestBody"]["content"]["application/json"]["schema"])
    assert {"customers", "top_reasons"} <= set(request["properties"]), request
    item = _schema(spec, request["properties"]["customers"]["items"])
    assert "customer_id" in item["properties"] and "customer_id" in item.get("required", [])
    answer = _schema(spec, post["responses"]["200"]["content"]["application/json"]["schema"])
    result = _schema(spec, answer["properties"]["results"]["items"])
    for name in ("churn_probability", "risk_band", "reasons", "offer", "model_version", "error"):
        assert name in result["properties"], name
    for probe in ("/healthz", "/readyz"):
        assert probe in spec["paths"], f"{probe} is not documented"
    # the page a person browses
    status, page, headers = http(service, "/", key=None)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "swagger" in page["text"].lower()


def _client_example() -> str:
    text = (REPO / "docs" / "python-client.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/python-client.md should hold one Python example"
    return blocks[0]


def test_the_documented_python_client_scores_against_the_running_service(service, served,
                                                                          tmp_path):
    ids = served["features"].frame["customer_id"].astype(str).head(2).tolist()
    script = tmp_path / "crm_client.py"
    script.write_text(_client_example())
    env = worktree_env({"CHURN_URL": service, "CHURN_API_KEY": API_KEYS[1],
                        "CHURN_CUSTOMER_IDS": ",".join([*ids, "nobody"])})
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = run.stdout
    assert f"model churn v{served['version']}" in out, out
    # the probabilities the example prints are the service's, customer by customer
    status, direct, _ = http(service, "/score", {"customers": [{"customer_id": i} for i in ids]})
    assert status == 200, direct
    for item in direct["results"]:
        line = next(x for x in out.splitlines() if x.startswith(f"{item['customer_id']}: "))
        assert f"churn {item['churn_probability']:.1%} ({item['risk_band']} risk)" in line, line
    assert "nobody: not scored: unknown customer_id" in out, out
    assert re.search(r"lead-42: churn \d+\.\d%", out), out
    assert "refused (400)" in out and "customers" in out.split("refused (400)")[1], out


def test_a_wrong_key_is_refused_by_the_client_with_401(service):
    import bentoml

    with bentoml.SyncHTTPClient(service, token="not-a-key-" + "x" * 30, timeout=10) as client:
        with pytest.raises(bentoml.exceptions.BentoMLException) as refused:
            client.score(customers=[{"customer_id": "C1"}])
    assert refused.value.error_code.value == 401, refused.value

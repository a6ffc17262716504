"""Inputs and outputs as paths or URIs, published atomically; the errors a user meets first (an
output that cannot be written, a Spark master that does not answer) are one line, and quick.

The remote code path runs on pyarrow's in-memory ``mock://`` filesystem: the same calls an
``s3a://`` or ``hdfs://`` location makes, without a network (those schemes are not tested here).
"""

from __future__ import annotations

import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app
from jobs.storage import (
    StorageError,
    check_writable,
    local_copy,
    location,
    output_files,
    staged_output,
)

runner = CliRunner()


@pytest.mark.parametrize("given, local", [
    ("file:///tmp/a%20b/out.parquet", "/tmp/a b/out.parquet"),
    ("file:/tmp/x.csv", "/tmp/x.csv"),
    ("/tmp/y.parquet", "/tmp/y.parquet"),
])
def test_local_paths_and_file_uris_are_the_same_place(given, local):
    where = location(given)
    assert str(where.local) == local and where.spark_uri().startswith("file:///")
    assert where.sibling("m.json").local.name == "m.json"


def test_a_file_uri_with_a_host_and_an_unknown_scheme_are_named():
    with pytest.raises(StorageError, match="names no host"):
        location("file://server/share/x.parquet")
    with pytest.raises(StorageError, match="cannot open nosuch://b/x"):
        location("nosuch://b/x")


def test_remote_outputs_appear_whole_and_last(tmp_path):
    out = location("mock:///bucket/scores/out.parquet")
    files = output_files(out)
    with staged_output(out, also=files[:-1]) as local:
        pd.DataFrame({"a": [1, 2]}).to_parquet(local, index=False)
        local.with_name("out.manifest.json").write_text("{}")
        assert not out.exists()  # nothing published while the job runs
    assert out.exists() and location("mock:///bucket/scores/out.manifest.json").exists()
    with out.fs.open_input_file(out.path) as f:
        assert pq.read_table(f).num_rows == 2
    names = [i.base_name for i in out.fs.get_file_info(
        __import__("pyarrow.fs").fs.FileSelector("bucket/scores"))]
    assert sorted(names) == ["out.manifest.json", "out.parquet"]  # no temporary names left


def test_remote_outputs_are_published_output_first_and_manifest_last(monkeypatch):
    import jobs.storage as storage

    published, real = [], storage.publish
    monkeypatch.setattr(storage, "publish",
                        lambda src, dest: (published.append(dest.name), real(src, dest)))
    out = location("mock:///bucket/order/out.parquet")
    with staged_output(out, also=output_files(out)[:-1]) as local:
        pd.DataFrame({"a": [1]}).to_parquet(local, index=False)
        pd.DataFrame({"a": [2]}).to_parquet(local.with_name("out.quarantine.parquet"), index=False)
        local.with_name("out.manifest.json").write_text("{}")
    assert published == ["out.parquet", "out.quarantine.parquet", "out.manifest.json"]


def test_a_failed_job_publishes_nothing():
    out = location("mock:///bucket/failed/out.parquet")
    with pytest.raises(RuntimeError), staged_output(out) as local:
        pd.DataFrame({"a": [1]}).to_parquet(local, index=False)
        raise RuntimeError("the job failed")
    assert not out.exists()


def test_remote_inputs_are_read_through_a_local_copy(tmp_path):
    src = location("mock:///bucket/crm")
    src.fs.create_dir(src.path)
    with src.fs.open_output_stream(src.path + "/customers.csv") as f:
        f.write(b"customer_id,signup_date\nA,2024-01-01\n")
    with local_copy(src) as folder:
        assert pd.read_csv(folder / "customers.csv")["customer_id"].tolist() == ["A"]
    with pytest.raises(FileNotFoundError, match="mock:///bucket/nothing"):
        with local_copy(location("mock:///bucket/nothing")):
            pass


def test_an_output_that_cannot_be_written_is_found_before_the_job(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(StorageError, match="cannot write to"):
        check_writable(location((tmp_path / "a_file" / "out.parquet").as_uri()))


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_score_names_an_unwritable_output_in_one_line(tmp_path, engine):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "t.parquet").write_bytes(b"")
    out = (tmp_path / "a_file" / "out.parquet").as_uri()
    run = runner.invoke(app, ["score", "--no-track", "--features", str(tmp_path / "t.parquet"),
                              "--out", out, "--engine", engine])
    assert run.exit_code == 2, run.output
    assert run.output.strip().startswith("error: cannot write to file://"), run.output
    assert len(run.output.strip().splitlines()) == 1, run.output


@pytest.mark.parametrize("command", [
    ["score", "--no-track", "--features", "T", "--out", "O"],
    ["features", "build", "--data", "T", "--cutoff", "2025-01-01", "--out", "O"],
], ids=["score", "features build"])
def test_an_unreachable_master_fails_fast_with_one_line(tmp_path, command):
    (tmp_path / "t.parquet").write_bytes(b"")
    args = [str(tmp_path / "t.parquet") if a == "T" else str(tmp_path / "o.parquet") if a == "O"
            else a for a in command]
    started = time.monotonic()
    run = runner.invoke(app, [*args, "--engine", "spark", "--spark-master", "spark://127.0.0.1:1"])
    assert time.monotonic() - started < 30
    assert run.exit_code == 1, run.output
    assert run.output.strip() == ("error: cannot reach the Spark master spark://127.0.0.1:1: "
                                  "127.0.0.1:1 (Connection refused); is it running and is the "
                                  "URL right?"), run.output
    assert not (tmp_path / "o.parquet").exists()


def test_score_and_features_take_uris_end_to_end(served_workdir, served, sample_dir, tmp_path):
    """The local engine reads a file:// URI and publishes to a remote (mock) store."""
    table = tmp_path / "features.parquet"
    served["features"].frame.drop(columns=["label"]).to_parquet(table, index=False)
    run = runner.invoke(app, ["score", "--no-track", "--features", table.as_uri(),
                              "--out", "mock:///bucket/nightly/scores.csv"])
    assert run.exit_code == 0, run.output
    out = location("mock:///bucket/nightly/scores.csv")
    with out.fs.open_input_stream(out.path) as f:
        scores = pd.read_csv(f)
    assert len(scores) == len(served["features"].frame)
    assert location("mock:///bucket/nightly/scores.manifest.json").exists()
    assert location("mock:///bucket/nightly/scores.quarantine.csv").exists()


def test_spark_failures_read_as_one_line():
    from jobs.spark_session import one_line

    task_failure = RuntimeError(
        "An error occurred while calling o123.parquet.\n: org.apache.spark.SparkException: Job "
        "aborted due to stage failure: Task 0 in stage 3.0 failed 4 times\norg.apache.spark.api."
        "python.PythonException: Traceback (most recent call last):\n  File \"x.py\", line 1\n"
        "features.contract.ContractError: orders.amount: 2 negative values\n\tat org.apache.spark"
        ".api.python.BasePythonRunner.read(PythonRunner.scala:1)\n")
    assert one_line(task_failure) == "ContractError: orders.amount: 2 negative values"
    jvm_only = RuntimeError("An error occurred while calling o7.sql.\n: java.io.IOException: "
                            "No FileSystem for scheme \"s3a\"\n\tat org.apache.hadoop.fs.X(X.java)")
    assert one_line(jvm_only) == "java.io.IOException: No FileSystem for scheme \"s3a\""


def test_a_malformed_spark_setting_is_named(tmp_path):
    run = runner.invoke(app, ["features", "build", "--data", str(tmp_path), "--cutoff",
                              "2025-01-01", "--out", str(tmp_path / "o.parquet"), "--engine",
                              "spark", "--spark-conf", "spark.executor.memory"])
    assert run.exit_code == 2 and "is not KEY=VALUE" in run.output, run.output

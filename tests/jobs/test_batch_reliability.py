"""The batch job under bad input and faults (issue 17): cutoffs whatever the chunking, duplicate
keys, values the model's specification does not allow, empty input, a kill between output and
manifest, a full disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["customer_id", "churn_probability", "risk_band", "reasons", "offer_id",
           "offer_expected_net_value", "offer_churn_reduction", "model_name", "model_version",
           "cutoff", "scored_at"]


@pytest.fixture
def env(served_workdir):
    return served_workdir


def _score(*args):
    return runner.invoke(app, ["score", "--no-track", *map(str, args)])


def _multi_cutoff(feature_set) -> pd.DataFrame:
    """The training feature table (five cutoffs, customers repeated across them), rows shuffled
    so that every chunk mixes cutoffs."""
    table = feature_set.frame.drop(columns=["label"])
    return table.sample(frac=1.0, random_state=3).reset_index(drop=True)


def _read(env: Path, name: str):
    return (pd.read_parquet(env / f"{name}.parquet"),
            pd.read_parquet(env / f"{name}.quarantine.parquet"),
            json.loads((env / f"{name}.manifest.json").read_text()))


def test_each_row_keeps_its_own_cutoff_whatever_the_chunk_size(env, feature_set):
    table = _multi_cutoff(feature_set)
    assert table["cutoff"].nunique() == 5 and table["customer_id"].duplicated().any()
    table.to_parquet(env / "features.parquet", index=False)
    outs = {}
    for size in (333, 100_000):
        run = _score("--features", env / "features.parquet", "--out", env / f"s{size}.parquet",
                     "--chunk-size", size)
        assert run.exit_code == 0, run.output
        outs[size] = pd.read_parquet(env / f"s{size}.parquet").drop(columns=["scored_at"])
    small, whole = outs[333], outs[100_000]
    pd.testing.assert_frame_equal(small, whole)
    want = table["cutoff"].dt.strftime("%Y-%m-%d").to_numpy()
    assert (small["customer_id"].to_numpy() == table["customer_id"].astype(str).to_numpy()).all()
    assert (small["cutoff"].to_numpy() == want).all(), "a row was labelled with another cutoff"
    assert not small.duplicated(["customer_id", "cutoff"]).any()


def test_every_copy_of_a_duplicate_key_is_quarantined_and_counted(env, feature_set):
    table = _multi_cutoff(feature_set).head(3000)
    # two keys repeated far apart (other chunks), one of them with different features
    copies = table.iloc[[5, 2500]].copy()
    copies["recency_days"] = copies["recency_days"].fillna(0) + 7
    table = pd.concat([table, copies], ignore_index=True)
    table.to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--chunk-size", 500, "--max-quarantine-share", 0.01)
    assert run.exit_code == 0, run.output
    scored, quarantine, manifest = _read(env, "scored")
    dup = quarantine[quarantine["reason"] == "duplicate key"]
    keys = set(zip(copies["customer_id"], copies["cutoff"].dt.strftime("%Y-%m-%d"), strict=True))
    assert set(zip(dup["customer_id"], dup["cutoff"], strict=True)) == keys and len(dup) == 4
    assert not scored.duplicated(["customer_id", "cutoff"]).any()
    assert not set(zip(scored["customer_id"], scored["cutoff"], strict=True)) & keys
    assert manifest["quarantine_reasons"] == {"duplicate key": 4}
    assert manifest["rows_in"] == len(table) == manifest["rows_out"] + 4


def _bad_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """Rows the specification forbids, each with the words its reason must contain."""
    table = table.copy()
    for col in ("orders_lifetime", "email_open_rate_90d", "spend_lifetime", "tenure_days"):
        table[col] = table[col].astype(float)
    want = {}
    table.loc[0, "orders_lifetime"] = -1.0
    want[0] = "orders_lifetime below the allowed minimum 0"
    table.loc[1, "email_open_rate_90d"] = 1.5
    want[1] = "email_open_rate_90d above the allowed maximum 1"
    table.loc[2, "spend_lifetime"] = 1e12
    want[2] = "spend_lifetime above the allowed maximum"
    table.loc[3, "tenure_days"] = -1e9
    want[3] = "tenure_days below the allowed minimum 0"
    features = [c for c in table.columns if c not in ("customer_id", "cutoff")]
    table.loc[4, features] = None
    want[4] = "every feature is empty"
    return table, want


def test_values_the_specification_forbids_are_quarantined_with_the_field(env, served):
    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    table, want = _bad_rows(table)
    table.to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet",
                 "--chunk-size", 4)
    assert run.exit_code == 0, run.output
    scored, quarantine, manifest = _read(env, "scored")
    reasons = dict(zip(quarantine["customer_id"], quarantine["reason"], strict=True))
    for row, words in want.items():
        cid = table.loc[row, "customer_id"]
        assert words in reasons.get(cid, ""), (row, reasons.get(cid))
        assert cid not in set(scored["customer_id"])
    assert len(quarantine) == len(want) and manifest["rows_quarantined"] == len(want)
    assert len(scored) == len(table) - len(want)


def test_the_recorded_limits_hold_the_training_range_with_a_margin(env, served):
    from scoring.model_store import load_scorer, use_tracking

    use_tracking()
    scorer = load_scorer("models:/churn@champion").scorer
    frame = served["features"].frame
    assert scorer.meta["limits"]["recorded"] is True
    spec = scorer.spec("tenure_days")
    assert spec.low == 0 and spec.high >= 10 * frame["tenure_days"].max()
    share = scorer.spec("email_open_rate_90d")
    assert (share.low, share.high) == (0, 1)


def _run_churn(args: list[str], env_extra: dict | None = None):
    """A real `churn score` process running this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return [sys.executable, "-m", "churn.cli", "score", "--no-track", *args], env


@pytest.mark.parametrize("empty", ["parquet with no rows", "csv with a header only",
                                   "every row quarantined"])
def test_empty_or_fully_quarantined_input_gives_an_empty_output_and_its_manifest(env, served,
                                                                                  empty):
    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    extra = []
    if empty == "parquet with no rows":
        source = env / "features.parquet"
        table.head(0).to_parquet(source, index=False)
    elif empty == "csv with a header only":
        source = env / "features.csv"
        table.head(0).to_csv(source, index=False)
    else:
        source = env / "features.parquet"
        bad = table.head(30).copy()
        bad["recency_days"] = -3.0
        bad.to_parquet(source, index=False)
        extra = ["--max-quarantine-share", "1"]
    cmd, penv = _run_churn(["--features", str(source), "--out", str(env / "scored.parquet"),
                            "--campaign-budget", "100", *extra])
    done = subprocess.run(cmd, capture_output=True, text=True, env=penv, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "0 customers scored" in done.stdout
    scored, quarantine, manifest = _read(env, "scored")
    assert list(scored.columns) == COLUMNS and len(scored) == 0
    assert manifest["rows_out"] == 0 and manifest["rows_in"] == len(quarantine)
    if empty == "every row quarantined":
        assert "no row could be scored" in done.stderr
        assert manifest["quarantine_reasons"] == {"recency_days below the allowed minimum 0": 30}
    else:
        assert "the input has no rows" in done.stderr


def test_an_input_without_columns_is_a_named_error(env, served):
    (env / "features.csv").write_text("")
    run = _score("--features", env / "features.csv", "--out", env / "scored.parquet")
    assert run.exit_code == 2 and "the input is empty" in run.output, run.output
    assert sorted(p.name for p in env.iterdir()) == ["features.csv"]


@pytest.mark.slow
@pytest.mark.parametrize("step", ["staged", "output"])
def test_a_kill_between_output_and_manifest_leaves_the_old_pair_or_the_new_pair(env, served,
                                                                                step):
    from jobs.batch_output import read_committed

    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    table.to_parquet(env / "features.parquet", index=False)
    out = env / "scored.parquet"
    base = ["--features", str(env / "features.parquet"), "--out", str(out)]
    cmd, penv = _run_churn([*base, "--top-reasons", "0"])
    first = subprocess.run(cmd, capture_output=True, text=True, env=penv, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    old = {p.name: p.read_bytes() for p in env.glob("scored*")}
    assert len(old) == 3
    # the second job differs (reasons): stop it at a commit step and kill it there
    cmd, penv = _run_churn(base, {"CHURN_BATCH_PAUSE_AT": step})
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=penv)
    try:
        for line in proc.stderr:
            if f"paused at {step}" in line:
                break
        else:
            pytest.fail(f"the job ended without pausing at {step} (exit {proc.wait()})")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    manifest = read_committed(out)  # what any reader sees: it finishes a half-done commit
    now = {p.name: p.read_bytes() for p in env.glob("scored*")}
    scored = pd.read_parquet(out)
    if step == "staged":  # killed before the output was replaced: the old pair, untouched
        assert now == old
        assert (scored["reasons"] == "[]").all()
    else:  # killed after: the new pair, complete
        assert now["scored.parquet"] != old["scored.parquet"]
        assert (scored["reasons"] != "[]").any()
        assert manifest["rows_out"] == len(scored)
    assert manifest is not None and manifest["model_version"] == served["version"]
    assert not [p.name for p in env.iterdir() if "manifest" in p.name and p.name[0] == "."]
    # the next job cleans what the killed one left (its stage) and runs as usual
    cmd, penv = _run_churn(base)
    again = subprocess.run(cmd, capture_output=True, text=True, env=penv, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert read_committed(out)["rows_out"] == len(table)
    assert not [p.name for p in env.iterdir() if p.name.startswith(".")], "leftovers"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_full_disk_gives_one_line_and_exit_code_74(env, served):
    """A real full filesystem: a 32 KiB tmpfs mounted in a user namespace (no root needed)."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {probe.stderr.decode()[:200]}")
    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    table.to_parquet(env / "features.parquet", index=False)
    small = env / "small"
    small.mkdir()
    cmd, penv = _run_churn(["--features", str(env / "features.parquet"), "--out",
                            str(small / "scored.parquet")])
    # after the job, list what it left on the full filesystem (the mount ends with the namespace)
    script = (f"mount -t tmpfs -o size=32k none {small} || exit 99; \"$@\"; rc=$?; "
              f"ls -A {small} > {env / 'left.txt'}; exit $rc")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *cmd],
                          capture_output=True, text=True, env=penv, timeout=300)
    assert done.returncode == 74, (done.returncode, done.stderr[-3000:])
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[0].startswith("error: I/O error") and "No space left on device" in lines[0]
    assert (env / "left.txt").read_text() == "", "a partial or temporary file was left behind"


def test_too_many_rows_outside_the_limits_fail_the_job_and_write_nothing(env, served):
    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    table["recency_days"] = np.where(np.arange(len(table)) % 5 == 0, -1.0,
                                     table["recency_days"])
    table.to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet")
    assert run.exit_code == 2 and "recency_days below the allowed minimum 0" in run.output
    assert sorted(p.name for p in env.iterdir()) == ["features.parquet"]


def test_a_boolean_column_where_a_count_belongs_is_refused_by_name(env, served):
    table = served["features"].frame.drop(columns=["label"]).reset_index(drop=True)
    table["orders_90d"] = table["orders_90d"] > 0
    table.to_parquet(env / "features.parquet", index=False)
    run = _score("--features", env / "features.parquet", "--out", env / "scored.parquet")
    assert run.exit_code == 2 and "orders_90d is a boolean, not a number" in run.output, run.output
    assert sorted(p.name for p in env.iterdir()) == ["features.parquet"]


def test_read_ahead_yields_every_chunk_in_order_then_the_readers_error():
    import threading

    from jobs.batch_read import read_ahead as _read_ahead

    def chunks():
        yield from (pd.DataFrame({"i": [k]}) for k in range(3))
        raise OSError("disk went away")

    seen = []
    with pytest.raises(OSError, match="disk went away"):
        for chunk in _read_ahead(chunks()):
            seen.append(int(chunk["i"].iloc[0]))
    assert seen == [0, 1, 2]
    # a consumer that stops early (an error while scoring) leaves no reader thread behind
    reader = _read_ahead(pd.DataFrame({"i": [k]}) for k in range(100))
    next(reader)
    reader.close()
    assert not [t for t in threading.enumerate() if t.name == "batch-read-ahead"]

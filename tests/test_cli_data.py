"""`churn data generate`'s layout: part files above one block of customers, one file per table up
to one block, either forced by an option, and the command says which and why."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app

runner = CliRunner()
TINY = ["data", "generate", "--months", "6", "--block", "300"]  # a tiny block keeps it fast


def _rows(folder, table: str) -> int:
    """Rows of a table in either layout (a file, or a folder of part files)."""
    return pq.read_table(folder / table if (folder / table).is_dir()
                         else folder / f"{table}.parquet").num_rows


@pytest.mark.parametrize("customers, flag, parts, says", [
    (301, None, 2, "2 part files per table, one per block of 300 customers: the default above "
                   "one block; --single-files for one file per table"),
    (300, None, 0, "one file per table: the default up to one block of 300 customers; "
                   "--partitioned for part files"),
    (301, "--single-files", 0, "one file per table: --single-files"),
    (300, "--partitioned", 1, "1 part file per table, one per block of 300 customers: "
                              "--partitioned"),
], ids=["default above one block", "default at one block", "single files forced",
        "parts forced"])
def test_the_layout_follows_the_size_unless_forced(tmp_path, customers, flag, parts, says):
    out = tmp_path / "crm"
    run = runner.invoke(app, [*TINY, "--customers", str(customers), *([flag] if flag else []),
                              "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert f"wrote {out}/ ({says})" in run.stdout, run.stdout
    if parts:
        written = sorted(p.name for p in (out / "orders").iterdir())
        assert written == [f"part-{b:05d}.parquet" for b in range(parts)], written
        assert not (out / "orders.parquet").exists()
    else:
        assert (out / "orders.parquet").is_file() and not (out / "orders").exists()
    assert _rows(out, "customers") == customers


def test_both_layouts_hold_the_same_rows(tmp_path):
    runs = {flag: runner.invoke(app, [*TINY, "--customers", "301", flag, "--out",
                                      str(tmp_path / flag)])
            for flag in ("--partitioned", "--single-files")}
    assert all(r.exit_code == 0 for r in runs.values()), [r.output for r in runs.values()]
    for table in ("customers", "orders", "engagement"):
        counts = {flag: _rows(tmp_path / flag, table) for flag in runs}
        assert len(set(counts.values())) == 1 and counts["--partitioned"] > 0, (table, counts)


def test_the_help_names_the_rule_and_both_options():
    run = runner.invoke(app, ["data", "generate", "--help"], env={"COLUMNS": "250"})
    assert run.exit_code == 0, run.output
    text = " ".join(run.stdout.split())
    assert ("The layout follows the size: above one --block of customers, a part file per "
            "block") in text, text
    assert "up to one block, one file per table" in text, text
    assert "--partitioned" in text and "--single-files" in text, text


def test_validate_checks_the_parts_in_workers_and_names_every_breach(tmp_path):
    """`churn data validate` checks the parts in the build's worker processes (the config's
    `parallel: {workers: N}`): the same report as one process, every part's breach named."""
    import pandas as pd

    crm = tmp_path / "crm"
    run = runner.invoke(app, [*TINY, "--customers", "900", "--out", str(crm)])
    assert run.exit_code == 0, run.output
    config = tmp_path / "w2.yaml"
    config.write_text("parallel:\n  workers: 2\n")
    run = runner.invoke(app, ["data", "validate", str(crm), "--config", str(config)])
    assert run.exit_code == 0, run.output
    assert "(3 customer partitions, 2 checked at a time)" in run.output, run.output
    for part in ("part-00000", "part-00002"):
        path = crm / "orders" / f"{part}.parquet"
        frame = pd.read_parquet(path)
        frame.loc[1, "amount"] = -5.0
        frame.to_parquet(path, index=False)
    outputs = {}
    for workers in (1, 2):
        config = tmp_path / f"w{workers}.yaml"
        config.write_text(f"parallel:\n  workers: {workers}\n")
        run = runner.invoke(app, ["data", "validate", str(crm), "--config", str(config)])
        assert run.exit_code == 2, run.output
        outputs[workers] = run.output
    assert outputs[2] == outputs[1]
    for word in ("orders.amount", "negative", "part-00000", "part-00002"):
        assert word in outputs[2], outputs[2]
    assert "part-00001" not in outputs[2]

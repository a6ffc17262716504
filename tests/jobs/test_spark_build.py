"""Which Spark feature build a source and an output take (no Spark session needed)."""

from __future__ import annotations

from features.sample import SampleSpec, generate, write_partitioned, write_sample
from jobs.spark_build import builds_on_parts


def test_only_local_parts_written_locally_run_on_the_partitions(tmp_path):
    parts, single = tmp_path / "crm", tmp_path / "one"
    write_partitioned(SampleSpec(customers=300, months=13, seed=2, block=100), parts)
    write_sample(generate(SampleSpec(customers=100, months=13, seed=2)), single)
    out = tmp_path / "out" / "f.parquet"
    assert builds_on_parts(parts, out)
    assert builds_on_parts(f"file://{parts}", f"file://{out}")
    # the executors leave results and read the BTYD spool beside the output: a remote one is
    # on no path they share, so Spark buckets the customers itself
    assert not builds_on_parts(parts, "mock:///bucket/features/f.parquet")
    assert not builds_on_parts(single, out)  # one part: one task

"""A real Spark standalone cluster (a master and two 1-core, 1 GB workers on 127.0.0.1), started
once per test run when a test asks for it and stopped by PID at the end, also on failure."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    from tests.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster"), workers=2) as cluster:
        yield cluster

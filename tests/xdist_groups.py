"""How `make test`'s two pytest-xdist workers (`--dist loadgroup`) share the suite. Each worker has
its own session fixtures: its own tracking server, its own shared training (`trained`, `fitted`,
`served`) and, if it needs one, its own Spark standalone cluster. The modules with a test that
reaches them (``SHARED_FIXTURES``) are too many for one worker (about three quarters of the
suite's time), so they form two groups, each run whole by one worker: each group sets the session
up once (one more tracking server and training than a serial run: about 20 s), and a module's
fixtures are set up once. Every other module is a unit of its own, run by whichever worker is
free. The two groups hold the most tests, so xdist hands them out first, one to each worker.
A plugin of its own (tests/conftest.py imports its hook) so that tests/test_parallel_groups.py
can load it in a child pytest without the project's imports."""

from __future__ import annotations

import pytest

SHARED_GROUPS = ("session-servers-1", "session-servers-2")
SHARED_FIXTURES = {"mlflow_server", "spark_cluster"}
# the second group's modules, chosen to even out the two groups' time (seconds in a serial run on
# this 2-core machine, session 13): every other module that uses the session goes to the first,
# which holds the Spark cluster's (tests/jobs/test_spark_cluster.py 119, test_load_faults 87,
# test_batch_reliability 56, test_spark 44, test_uplift 35, test_registry 30, ...: about 400 s)
SECOND_GROUP = {
    "tests/serving/test_service_server.py",     # 87
    "tests/scoring/test_portable_model.py",     # 81
    "tests/jobs/test_batch.py",                 # 50
    "tests/serving/test_registry_outage.py",    # 43
    "tests/serving/test_service_faults.py",     # 33
    "tests/scoring/test_offers.py",             # 31
    "tests/training/test_uplift_pooled.py",     # 11
    "tests/training/test_model_lifecycle.py",   # 4
    "tests/serving/test_service_contract.py",   # 2
    "tests/training/test_policy_evaluation.py",  # 2
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):
        return
    module = {item: item.nodeid.split("::")[0] for item in items}
    shared = {module[item] for item in items
              if SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))}
    for item in items:
        if not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(shared_group(module[item]) if module[item]
                                                    in shared else module[item]))
    if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
        for item in items:
            _tell_the_group(item)


def shared_group(module: str) -> str:
    """The group of a module that uses the session's servers (its path from the rootdir)."""
    return SHARED_GROUPS[1] if module.replace("\\", "/") in SECOND_GROUP else SHARED_GROUPS[0]


def _tell_the_group(item) -> None:
    """A worker tells the controller an item's group by the "@group" end of its node id.
    pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9 no longer reads (the id is
    ``item._id``): without this every test is a unit of its own and both workers train."""
    from _pytest.nodeid import NodeId

    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})
    if groups and "@" not in item.nodeid.rpartition("]")[2]:
        item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")

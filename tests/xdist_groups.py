"""How `make test`'s two pytest-xdist workers (`--dist loadgroup`) share the suite. Each worker has
its own session fixtures, so every module with a test that reaches the session's tracking server
(the shared training `trained`, `fitted`, `served`, the registry copy) or the Spark standalone
cluster goes whole to ONE worker, the one that trained and started the cluster (its module
fixtures are set up once); every other module is a unit of its own, run by whichever worker is
free. A plugin of its own (tests/conftest.py imports its hook) so that tests/test_parallel_groups.py
can load it in a child pytest without the project's imports."""

from __future__ import annotations

import pytest

SHARED_GROUP = "session-servers"
SHARED_FIXTURES = {"mlflow_server", "spark_cluster"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):
        return
    module = {item: item.nodeid.split("::")[0] for item in items}
    shared = {module[item] for item in items
              if SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))}
    for item in items:
        if not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(
                SHARED_GROUP if module[item] in shared else module[item]))
    if hasattr(config, "workerinput") and config.getvalue("loadgroup"):
        for item in items:
            _tell_the_group(item)


def _tell_the_group(item) -> None:
    """A worker tells the controller an item's group by the "@group" end of its node id.
    pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9 no longer reads (the id is
    ``item._id``): without this every test is a unit of its own and both workers train."""
    from _pytest.nodeid import NodeId

    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})
    if groups and "@" not in item.nodeid.rpartition("]")[2]:
        item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")

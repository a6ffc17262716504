"""Free loopback ports for the servers the tests start."""

from __future__ import annotations

import os
from pathlib import Path

# Ports for the servers the tests start. A port from bind(0) is in the kernel's ephemeral range,
# which every bind(0) and outgoing connection on the machine draws from (the other xdist worker,
# Spark's driver, a Jupyter kernel, the load tests' clients): between its release and the server's
# bind, or while a registry is down to be started again on its port, any of them may take it.
# These come from below that range, from a block of its own per xdist worker (a random free port
# in it: another pytest run on the machine picks its own), each checked by a bind and never given
# twice in a process; bind(0) if the machine leaves no room below its ephemeral range.
PORT_FLOOR, PORT_BLOCK = 20000, 1000
_ports_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    import random
    import socket

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...; none without xdist
    low = PORT_FLOOR + PORT_BLOCK * (int(worker[2:]) + 1 if worker[2:].isdigit() else 0)
    if low + PORT_BLOCK <= _ephemeral_low():
        for port in random.sample(range(low, low + PORT_BLOCK), PORT_BLOCK):
            if port in _ports_given:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use (or lingering after a server that stopped)
            _ports_given.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

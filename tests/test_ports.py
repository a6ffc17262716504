"""The test servers' ports: a block per xdist worker below the kernel's ephemeral range (where
no bind(0) or outgoing connection elsewhere can take a port between its check and the server's
bind), never the same port twice in a process; bind(0) where there is no room below the range."""

from __future__ import annotations

import socket

from tests import ports


def test_each_worker_draws_from_its_own_block_and_never_twice(monkeypatch):
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 32768)
    monkeypatch.setattr(ports, "_ports_given", set())
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    given = [ports.free_port() for _ in range(50)]
    assert all(22000 <= p < 23000 for p in given), given
    assert len(set(given)) == 50
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert 21000 <= ports.free_port() < 22000


def test_a_port_in_use_is_passed_over(monkeypatch):
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 32768)
    monkeypatch.setattr(ports, "_ports_given", set())
    monkeypatch.setattr(ports, "PORT_BLOCK", 2)  # a block of two ports, one of them taken
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 20000))
        except OSError:  # in use already on this machine: taken all the same
            pass
        free = ports.free_port()
    assert free != 20000 and (free == 20001 or free >= 32768), free


def test_no_room_below_the_range_falls_back_to_the_kernels_choice(monkeypatch):
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: 20500)  # the block does not fit
    monkeypatch.setattr(ports, "_ports_given", set())
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    port = ports.free_port()
    assert not 21000 <= port < 22000 and port > 0

"""Ports for servers the tests start, safe when other tests (another pytest-xdist worker, another
test run on the machine) start servers at the same time.

Best is a server that binds port 0 itself and says which port it got (``elnet serve --port 0``
prints its address; torch's TCPStore takes ``MASTER_PORT=0`` with one process). For a server
that must be given a number (Label Studio), :func:`start_on_free_port` asks the OS for a free
port and, when another process takes it before the server binds it (the server's ``start``
raises :class:`PortTaken`), tries again with a new one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
ATTEMPTS = 5


class PortTaken(Exception):
    """Raised by a ``start(port)`` given to :func:`start_on_free_port` when the server could not
    have ``port`` (in use by another process); the server is already stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that was free a moment ago (bound to port 0, then released).

    Another process may take it before the caller binds it: give it to a server only through
    :func:`start_on_free_port`."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_on_free_port(start: Callable[[int], T], attempts: int = ATTEMPTS) -> T:
    """``start(port)`` on a free port; on :class:`PortTaken`, again on another (``attempts`` in
    all, then the test fails naming the last port and why). Returns what ``start`` returned."""
    reasons: list[str] = []
    for _ in range(attempts):
        port = free_port()
        try:
            return start(port)
        except PortTaken as err:
            reasons.append(f"{port}: {err}")
    pytest.fail(f"no free port after {attempts} tries: {'; '.join(reasons)}")

"""Loopback ports for the development kit: everything it starts binds to 127.0.0.1."""

from __future__ import annotations

import socket
from typing import Final

HOST: Final = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (the OS picks it; races are the caller's)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])

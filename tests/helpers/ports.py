"""A free TCP port on 127.0.0.1, for a server a test or a benchmark starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_address() -> str:
    """This machine's first IPv4 address that is not a loopback one: a server bound there
    sees a client on this machine come from it, not from 127.0.0.1 (Linux picks the
    destination's own address as the source), as it sees a client in another container."""
    import subprocess

    listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False)
    for address in listed.stdout.split():
        if "." in address and not address.startswith("127."):
            return address
    raise RuntimeError(
        f"no IPv4 address besides the loopback: `hostname -I` says {listed.stdout!r}"
    )

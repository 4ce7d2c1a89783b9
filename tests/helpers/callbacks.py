"""Callback requests as Dash's renderer sends them, for tests of the callback endpoint."""

from __future__ import annotations

from typing import Any


def outputs_of(spec: str) -> list[dict[str, Any]]:
    """The ``outputs`` of a request for the callback ``spec`` (a callback_map key)."""
    names = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    return [{"id": n.rsplit(".", 1)[0], "property": n.rsplit(".", 1)[1]} for n in names]

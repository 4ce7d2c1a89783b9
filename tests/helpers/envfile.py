"""deploy/envfile.py, loaded from its file: it is a script run on the server's python3
(no package), and the tests use its parser and renderer as the server does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

from .paths import ROOT


def load() -> Any:
    spec = importlib.util.spec_from_file_location("envfile", ROOT / "deploy" / "envfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENVFILE = load()


def run_envfile(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python3 deploy/envfile.py ARGS`` as the operator runs it, ``stdin`` its input
    (never the terminal: a value asked for finds what is given, or nothing)."""
    return subprocess.run(
        [sys.executable, "deploy/envfile.py", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )

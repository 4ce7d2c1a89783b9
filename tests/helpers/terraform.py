"""Terraform's configuration as terraform reads it, for tests: the ``.tf`` files parsed
with python-hcl2, and what a resource sends to the server (the settings push's script,
built as terraform's remote-exec builds it)."""

from __future__ import annotations

import re
from typing import Any

import hcl2

from .paths import ROOT

TERRAFORM = ROOT / "terraform"


def plain(value: Any) -> Any:
    """python-hcl2's output without its quoting of names and strings and block markers."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def terraform() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with open(path) as f:
            for key, value in plain(hcl2.load(f)).items():
                merged.setdefault(key, []).extend(value)
    return merged


def resources(tf: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (kind, name): body
        for block in tf["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }


def hcl_text(value: str) -> str:
    """A quoted HCL string as terraform reads it (python-hcl2 keeps the source's escapes):
    a literal, so no interpolation may be left in it."""
    assert re.search(r"(?<![$%])[$%]\{", value) is None, f"interpolation in {value!r}"
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    text = re.sub(r"\\(.)", lambda m: escapes[m.group(1)], value)
    return text.replace("$${", "${").replace("%%{", "%{")


def settings_push_script() -> str:
    settings = resources(terraform())[("terraform_data", "server_settings")]
    (remote,) = [p["remote-exec"] for p in settings["provisioner"] if "remote-exec" in p]
    return "#!/bin/sh\n" + "\n".join(hcl_text(line) for line in remote["inline"]) + "\n"

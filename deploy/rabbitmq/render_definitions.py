"""Render RabbitMQ's definitions file from the environment, at deploy time.

    python deploy/rabbitmq/render_definitions.py OUT.json

One vhost (``RABBITMQ_VHOST``, default ``wiki-events``), one user per application with
the least it needs, an administrator for the management UI, the topology the code
declares (``wiki_core.topology.topology``) and a policy bounding the quarantine. No
``guest``. Passwords come from the environment and are stored as RabbitMQ's salted
SHA-256 hashes, so the rendered file holds no password in clear text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from wiki_core.topology import EXCHANGE, QUARANTINE, topology

QUARANTINE_MAX_LENGTH = 1_000_000


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _escape(name: str) -> str:
    return "^" + name.replace(".", r"\.") + "$"


def definitions(env: dict[str, str]) -> dict[str, Any]:
    vhost = env.get("RABBITMQ_VHOST") or "wiki-events"
    missing = [
        k
        for k in ("RABBITMQ_ADMIN_PASSWORD", "RABBITMQ_READER_PASSWORD", "RABBITMQ_LOADER_PASSWORD")
        if not env.get(k)
    ]
    if missing:
        raise SystemExit(f"render_definitions: set {', '.join(missing)} (see .env.example)")
    ours = r"^wiki\..*$"
    exchanges = f"{_escape(EXCHANGE)}|{_escape(QUARANTINE)}"

    def user(name: str, password_key: str, tags: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "password_hash": password_hash(env[password_key]),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": tags,
            "limits": {},
        }

    spec = topology(quorum=True)
    for item in (*spec["exchanges"], *spec["queues"], *spec["bindings"]):
        item["vhost"] = vhost
    return {
        "rabbitmq_version": "4.1",
        "users": [
            user(
                env.get("RABBITMQ_ADMIN_USER") or "admin",
                "RABBITMQ_ADMIN_PASSWORD",
                ["administrator"],
            ),
            user("reader", "RABBITMQ_READER_PASSWORD", []),
            user("loader", "RABBITMQ_LOADER_PASSWORD", []),
        ],
        "vhosts": [{"name": vhost, "limits": [], "metadata": {"description": "wiki-events"}}],
        "permissions": [
            {
                "user": env.get("RABBITMQ_ADMIN_USER") or "admin",
                "vhost": vhost,
                "configure": ".*",
                "write": ".*",
                "read": ".*",
            },
            # the reader declares the topology (idempotent), binds, and publishes
            {"user": "reader", "vhost": vhost, "configure": ours, "write": ours, "read": exchanges},
            # the loader declares, consumes its queue and the quarantine (into bronze), acks
            {"user": "loader", "vhost": vhost, "configure": ours, "write": ours, "read": ours},
        ],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": [
            {
                "vhost": vhost,
                "name": "quarantine-bound",
                "pattern": _escape(QUARANTINE),
                "apply-to": "queues",
                "priority": 0,
                "definition": {"max-length": QUARANTINE_MAX_LENGTH, "overflow": "drop-head"},
            },
        ],
        "exchanges": spec["exchanges"],
        "queues": spec["queues"],
        "bindings": spec["bindings"],
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(definitions(dict(os.environ)), indent=2) + "\n")
    out.chmod(0o644)  # the rabbitmq user reads it; it holds hashes only
    print(f"render_definitions: wrote {out}")


if __name__ == "__main__":
    main()

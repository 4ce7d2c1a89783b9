"""Users of the embedded server: who may connect, with which password, read-only or not.

The chDB engine runs every query as its built-in ``default`` user and has no writable
access storage (clickhouse-local sets up only its ``users.xml`` storage, so ``CREATE
USER`` answers ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND). Authentication therefore
happens here, in the HTTP layer, with ClickHouse's codes and words; a read-only user's
connection runs with ``readonly=1``, so the engine itself refuses its writes, DDL and
setting changes exactly as a real server does.

Users come from a TOML file (``--users FILE`` or ``LOCAL_CLICKHOUSE_USERS``)::

    [users.default]
    password = ""                # or password_sha256_hex = "..."

    [users.dashboard]
    password_sha256_hex = "5e88..."
    readonly = 1

and from the environment the way the ``clickhouse/clickhouse-server`` image reads it:
``CLICKHOUSE_USER`` / ``CLICKHOUSE_PASSWORD`` define the administrative user,
``CLICKHOUSE_READONLY_USER`` / ``CLICKHOUSE_READONLY_PASSWORD`` add a read-only one.
With neither a users file nor ``CLICKHOUSE_USER``/``CLICKHOUSE_PASSWORD``, the one user is
``default`` without a password; with a users file only the users it (and the
environment) defines exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import AUTHENTICATION_FAILED, REQUIRED_PASSWORD, ClickHouseError


@dataclass(frozen=True)
class User:
    name: str
    password_sha256: str  # hex; sha256 of "" for no password
    readonly: int = 0

    def check(self, password: str) -> bool:
        given = hashlib.sha256(password.encode()).hexdigest()
        return hmac.compare_digest(given, self.password_sha256)

    @property
    def has_password(self) -> bool:
        return self.password_sha256 != _EMPTY


_EMPTY = hashlib.sha256(b"").hexdigest()


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


class Users:
    def __init__(self, users: Mapping[str, User]) -> None:
        self._users = dict(users)

    def authenticate(self, name: str | None, password: str | None) -> User:
        name = name or "default"
        user = self._users.get(name)
        if user is None or not user.check(password or ""):
            if user is not None and user.has_password and not password:
                raise ClickHouseError(
                    REQUIRED_PASSWORD, f"{name}: Authentication failed: password is required"
                )
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: password is incorrect, "
                "or there is no user with such name",
            )
        return user

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Users:
        env = os.environ if env is None else env
        users: dict[str, User] = {}
        path = path or env.get("LOCAL_CLICKHOUSE_USERS")
        # The administrative user: named by the environment, or else the implicit
        # passwordless ``default``, which exists only when there is no users file (a
        # users file means only its users, and those the environment names, exist).
        if env.get("CLICKHOUSE_USER") or env.get("CLICKHOUSE_PASSWORD") or not path:
            admin = env.get("CLICKHOUSE_USER") or "default"
            users[admin] = User(admin, _hash(env.get("CLICKHOUSE_PASSWORD", "")), 0)
        ro_name = env.get("CLICKHOUSE_READONLY_USER")
        if ro_name:
            users[ro_name] = User(ro_name, _hash(env.get("CLICKHOUSE_READONLY_PASSWORD", "")), 1)
        if path:
            data = tomllib.loads(Path(path).read_text())
            for name, spec in data.get("users", {}).items():
                if "password_sha256_hex" in spec:
                    digest = str(spec["password_sha256_hex"]).lower()
                else:
                    digest = _hash(str(spec.get("password", "")))
                readonly = int(spec.get("readonly", 0))
                if readonly not in (0, 1, 2):
                    raise ValueError(f"{path}: users.{name}.readonly must be 0, 1 or 2")
                users[name] = User(name, digest, readonly)
        return cls(users)

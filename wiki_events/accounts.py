"""The ClickHouse users ``wiki-events up`` gives its embedded server: production's own
(deploy/clickhouse/users.d, as it is, on clickhouse-server's users.xml), their passwords
generated once per data folder, and a local analyst for the SQL console. Each part of
the pipeline then logs in as the user production gives it (the loader as ``loader``,
dbt as ``dbt``, the dashboard as ``dashboard``, the dumps as ``dumps``), never as the
administrator; ``default`` stays the machine's own administrator, as in production
(no password, answering only on this machine's loopback).

The passwords live in ``$WIKI_EVENTS_DATA/clickhouse-users.env`` (mode 0600), so a
second ``up`` against a server that still runs, or ``wiki-events sql``, finds them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from wiki_core import analysts
from wiki_core.config import ClickHouseURL

SERVICES = ("loader", "dbt", "dashboard", "backup", "dumps")
ANALYST = "analyst"  # the local console's user
ROLES = (*SERVICES, ANALYST)
# production's users, next to this package in a checkout (and at /app in the image)
USERS_D = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "users.d"
PASSWORDS = "clickhouse-users.env"
FOLDER = "clickhouse-users.d"


def env_name(role: str) -> str:
    """The variable production's users.d reads the role's password from (from_env)."""
    return f"CLICKHOUSE_{role.upper()}_PASSWORD"


@dataclass(frozen=True)
class LocalAccounts:
    folder: Path  # the users.d folder the embedded server loads (--users-d)
    passwords: dict[str, str]  # role -> password

    @staticmethod
    def available() -> bool:
        return USERS_D.is_dir()

    @classmethod
    def load(cls, data_dir: Path) -> LocalAccounts | None:
        path = data_dir / PASSWORDS
        if not path.is_file():
            return None
        passwords = {}
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.startswith("CLICKHOUSE_") and name.endswith("_PASSWORD"):
                passwords[name[len("CLICKHOUSE_") : -len("_PASSWORD")].lower()] = value
        if set(passwords) != set(ROLES):
            return None
        return cls(data_dir / FOLDER, passwords)

    @classmethod
    def prepare(cls, data_dir: Path) -> LocalAccounts:
        """The passwords (made once) and the users.d folder: production's files, linked,
        and the local analyst's."""
        data_dir.mkdir(parents=True, exist_ok=True)
        accounts = cls.load(data_dir)
        if accounts is None:
            passwords = {role: analysts.new_password() for role in ROLES}
            path = data_dir / PASSWORDS
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("".join(f"{env_name(r)}={p}\n" for r, p in passwords.items()))
            accounts = cls(data_dir / FOLDER, passwords)
        accounts.folder.mkdir(exist_ok=True)
        for old in accounts.folder.iterdir():
            old.unlink()
        for item in sorted(USERS_D.iterdir()):
            if item.is_file() and not item.name.startswith("."):
                (accounts.folder / item.name).symlink_to(item)
        (accounts.folder / f"{ANALYST}.xml").write_text(
            analysts.users_xml(ANALYST, accounts.passwords[ANALYST], ("::1", "127.0.0.1"))
        )
        return accounts

    def server_env(self) -> dict[str, str]:
        """The embedded server's environment: the passwords its users file reads."""
        return {env_name(role): self.passwords[role] for role in SERVICES}

    def url(self, clickhouse_url: str, role: str) -> str:
        """``clickhouse_url`` with ``role``'s name and password."""
        target = ClickHouseURL.parse(clickhouse_url)
        scheme = "https" if target.secure else "http"
        return (
            f"{scheme}://{role}:{quote(self.passwords[role], safe='')}@{target.host}:"
            f"{target.port}/{target.database}"
        )


def role_urls(clickhouse_url: str, data_dir: Path) -> dict[str, str]:
    """The URL each part logs in with: its own user's when ``clickhouse_url`` is the
    local server ``up`` runs with its accounts (as its administrator, ``default``), else
    ``clickhouse_url`` itself for every part (a server of the user's own choosing)."""
    target = ClickHouseURL.parse(clickhouse_url)
    accounts = LocalAccounts.load(data_dir)
    local = target.host in ("127.0.0.1", "localhost", "::1")
    if accounts is None or not local or target.user != "default":
        return {role: clickhouse_url for role in ROLES}
    return {role: accounts.url(clickhouse_url, role) for role in ROLES}

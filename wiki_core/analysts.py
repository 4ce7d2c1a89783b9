"""An analyst: a ClickHouse user of their own, with the role ``analyst`` (read bronze,
silver and gold; deploy/clickhouse/users.d) and a database of their own, ``dev_NAME``,
where they may create, replace and drop what their dbt builds. Written as a users-file
fragment in clickhouse-server's own format, the password stored only hashed.

Used by ``wiki-events up`` (the local console's analyst) and the operator's
``deploy/bin/stack analyst`` commands (deploy/analysts.py, which keeps every analyst of
production in one such file on the data volume: ``Roster``). Standard library only: the
server's own python3 runs it."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
ROLE = "analyst"
# what dbt does in the analyst's own database: build, replace and drop models (tables,
# views, materialized views, dictionaries), and the database itself (not ALL, which
# also means users, sources and roles that happen to share the database's name)
DEV_PRIVILEGES = (
    "SHOW, SELECT, INSERT, ALTER, CREATE DATABASE, CREATE TABLE, CREATE VIEW, "
    "CREATE DICTIONARY, DROP DATABASE, DROP TABLE, DROP VIEW, DROP DICTIONARY, "
    "TRUNCATE, OPTIMIZE, dictGet"
)


class BadName(ValueError):
    pass


def check_name(name: str) -> str:
    """A user name that is also a database name's suffix: lower-case letters, digits
    and underscores, a letter first, at most 31 characters."""
    if not NAME.match(name) or name in ("default", "loader", "dbt", "dashboard", "backup", "dumps"):
        raise BadName(
            f"{name!r} cannot name an analyst: lower-case letters, digits and _, a letter "
            "first, at most 31 characters, and none of the service users' names"
        )
    return name


def database(name: str) -> str:
    return f"dev_{check_name(name)}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def users_xml(name: str, password: str, networks: tuple[str, ...] = ("::/0",)) -> str:
    """The users-file fragment for analyst ``name`` (its password only as sha256)."""
    return render([Analyst(check_name(name), digest(password), networks)])


@dataclass(frozen=True)
class Analyst:
    name: str
    password_sha256: str
    networks: tuple[str, ...] = ("::/0",)


def _user(analyst: Analyst) -> str:
    name = check_name(analyst.name)
    ips = "".join(f"<ip>{ip}</ip>" for ip in analyst.networks)
    return f"""        <!-- analyst {name}: written by wiki_core/analysts.py -->
        <{name}>
            <password_sha256_hex>{analyst.password_sha256}</password_sha256_hex>
            <networks>{ips}</networks>
            <profile>{ROLE}</profile>
            <quota>{ROLE}</quota>
            <grants>
                <query>GRANT {ROLE}</query>
                <query>GRANT {DEV_PRIVILEGES} ON {database(name)}.*</query>
            </grants>
        </{name}>
"""


def render(analysts: list[Analyst]) -> str:
    """A users.d file holding ``analysts`` (none: a file ClickHouse loads as empty)."""
    users = "".join(_user(a) for a in sorted(analysts, key=lambda a: a.name))
    return f"""<clickhouse>
    <!-- the analysts: deploy/bin/stack analyst add|remove|list (deploy.md, Analysts);
         each a user of its own with the role analyst (users.d/wiki-events.xml) and its
         own dev_NAME database; passwords only as sha256 -->
    <users>
{users}    </users>
</clickhouse>
"""


def parse(text: str) -> list[Analyst]:
    """The analysts of a file ``render`` wrote."""
    root = ET.fromstring(text)
    found = []
    for user in root.findall("./users/*"):
        secret = user.findtext("password_sha256_hex")
        if not secret:
            raise ValueError(f"user {user.tag}: no password_sha256_hex (not an analyst's entry)")
        networks = tuple(ip.text or "" for ip in user.findall("./networks/ip"))
        found.append(Analyst(user.tag, secret.strip(), networks or ("::/0",)))
    return found


class AnalystError(ValueError):
    """A command on the analysts that cannot be done, with the reason."""


class Roster:
    """Production's analysts, one users.d file on the data volume. ClickHouse reads it
    again within seconds of a change (its config reloader), so an analyst added or
    removed here can log in, or no longer, without a restart. The file is rewritten in
    place (never replaced by a rename), as compose mounts this one file into the
    container and a mount of a single file keeps the old one after a rename."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        """The file, empty, if there is none yet (compose mounts it: it must exist)."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write([])

    def names(self) -> list[str]:
        return [a.name for a in self._read()]

    def _read(self) -> list[Analyst]:
        try:
            return parse(self.path.read_text())
        except FileNotFoundError:
            raise AnalystError(
                f"{self.path}: no analysts file (deploy/bin/stack up makes it)"
            ) from None
        except (ET.ParseError, ValueError) as exc:
            raise AnalystError(f"{self.path}: not an analysts file: {exc}") from None

    def _write(self, analysts: list[Analyst]) -> None:
        data = render(analysts).encode()
        # one write into the open file: a reader sees the old or the new text, or for a
        # moment a short one, which ClickHouse cannot parse and reads again at its next look
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)

    def add(self, name: str, networks: tuple[str, ...] = ("::/0",)) -> str:
        """A new analyst ``name``; returns the password (shown once, kept nowhere)."""
        check_name(name)
        analysts = self._read()
        if any(a.name == name for a in analysts):
            raise AnalystError(
                f"analyst {name} exists already (a new password: remove {name}, then add it)"
            )
        password = new_password()
        self._write([*analysts, Analyst(name, digest(password), networks)])
        return password

    def remove(self, name: str) -> None:
        check_name(name)
        analysts = self._read()
        if not any(a.name == name for a in analysts):
            known = ", ".join(a.name for a in analysts) or "none"
            raise AnalystError(f"no analyst {name} (the analysts: {known})")
        self._write([a for a in analysts if a.name != name])

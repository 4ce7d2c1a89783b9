"""Reads of system tables, held to clickhouse-server's shipped rule
(``access_control_improvements.select_from_system_db_requires_grant`` and
``select_from_information_schema_requires_grant``), which chDB never reads: its engine
lets every user read every system table. A server requires a grant for all but a few.

The engine records what each query used (``system.query_log.used_privileges``, what
ClickHouse's access checker allowed, implicit grants included); server.py checks that
against the user's own grants (``system.grants`` of its role and the roles granted to
it) and the server's list of tables anyone may read, here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .access import Account


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_rows(conn: Any, sql: str) -> list[dict[str, Any]]:
    data = bytes(conn.query(sql, "JSONEachRow").bytes())
    return [json.loads(line) for line in data.splitlines() if line.strip()]


# The system tables every user may read when the server requires grants for the rest
# (ClickHouse's ContextAccess.cpp, always_accessible_tables), and those a SHOW privilege
# opens.
ALWAYS_READABLE_SYSTEM_TABLES = frozenset(
    {
        "one",
        "contributors",
        "licenses",
        "time_zones",
        "collations",
        "formats",
        "privileges",
        "data_type_families",
        "database_engines",
        "table_engines",
        "table_functions",
        "aggregate_function_combinators",
        "functions",
        "databases",
        "tables",
        "columns",
        "settings",
        "current_roles",
        "enabled_roles",
        "quota_usage",
    }
)
SHOW_PRIVILEGE_TABLES = {
    "users": "SHOW USERS",
    "roles": "SHOW ROLES",
    "row_policies": "SHOW ROW POLICIES",
    "settings_profiles": "SHOW SETTINGS PROFILES",
    "quotas": "SHOW QUOTAS",
}


def read_grants(anchor: Any, role: str) -> SystemGrants:
    """The SELECT grants (and partial revokes) on system and information_schema tables
    of ``role`` and the roles granted to it, from system.grants and system.role_grants."""
    roles = [role]
    seen = set(roles)
    while roles:
        current = roles.pop()
        for row in _json_rows(
            anchor,
            f"SELECT granted_role_name FROM system.role_grants WHERE role_name = {_quote(current)}",
        ):
            if row["granted_role_name"] not in seen:
                seen.add(row["granted_role_name"])
                roles.append(row["granted_role_name"])
    listed = ", ".join(_quote(r) for r in seen)
    rows = _json_rows(
        anchor,
        "SELECT access_type, database, table, column, is_partial_revoke FROM system.grants "
        f"WHERE role_name IN ({listed}) AND access_type IN ('SELECT', 'ALL') "
        "AND (database IS NULL OR database IN ('system', 'information_schema', "
        "'INFORMATION_SCHEMA'))",
    )
    return SystemGrants(
        tuple((r["database"], r["table"], r["column"], bool(r["is_partial_revoke"])) for r in rows)
    )


@dataclass(frozen=True)
class SystemGrants:
    """SELECT grants that reach system or information_schema tables: (database, table,
    column, partial revoke), None for "any"."""

    rows: tuple[tuple[str | None, str | None, str | None, bool], ...] = ()

    def covers(self, database: str, table: str, columns: Iterable[str] | None) -> bool:
        wanted: list[str | None] = list(columns) if columns else [None]
        return all(self._one(database, table, c) for c in wanted)

    def covers_database(self, database: str) -> bool:
        """Whether SELECT on the whole database is granted, with no partial revoke in
        it: nothing read there needs checking."""
        return self._one(database, "", None) and not any(
            r[3] and (r[0] is None or r[0].lower() == database) for r in self.rows
        )

    def _one(self, database: str, table: str, column: str | None) -> bool:
        def matches(row: tuple[str | None, str | None, str | None, bool]) -> bool:
            db, tbl, col, _ = row
            return (
                (db is None or db.lower() == database.lower())
                and (tbl is None or tbl == table)
                and (col is None or col == column)
            )

        granted = any(matches(r) and not r[3] for r in self.rows)
        revoked = any(matches(r) and r[3] for r in self.rows)
        return granted and not revoked


_USED = re.compile(
    r"^(?P<what>[A-Z][A-Z ]*?)(?:\((?P<columns>.*)\))? ON (?P<db>`[^`]+`|[^.]+)\.(?P<table>.+)$"
)


def read_denied(account: Account, used: str) -> str:
    """The privilege (as ClickHouse writes it) a query used that the account would not
    have on a server that requires grants for system tables, or "" if it has it."""
    m = _USED.match(used)
    if not m or m.group("what") != "SELECT":
        return ""
    database = m.group("db").strip("`")
    if database.lower() not in ("system", "information_schema"):
        return ""
    table = m.group("table").strip("`")
    if database == "system" and (
        table in ALWAYS_READABLE_SYSTEM_TABLES or table in account.show_tables
    ):
        return ""
    columns = [c.strip().strip("`") for c in (m.group("columns") or "").split(",") if c.strip()]
    if account.system_grants.covers(database, table, columns or None):
        return ""
    return used

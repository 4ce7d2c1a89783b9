"""Who may do what, decided by ClickHouse's own access control.

chDB runs every statement as its built-in user ``default`` (its client authenticates that
name and no other: ``programs/local/ChdbClient.cpp`` in chdb-io/chdb), and it has no
writable access storage. What it does have is ClickHouse's whole access model over a
users file: users, roles, grants, settings profiles with constraints, quotas. So:

1. **The probe.** The users file (ClickHouse's XML or YAML; its ``users.d/`` is merged by
   ClickHouse's own config processor, ``from_env`` included) is first loaded by
   throw-away in-memory engines, which are asked what they made of it: every user's
   authentication (``SHOW CREATE USER``, secrets shown), allowed hosts
   (``system.users``), grants (``SHOW GRANTS FOR``), settings profiles
   (``system.settings_profile_elements``) and quota (``system.quotas``,
   ``system.quota_limits``). Nothing here parses the file. (Two engines: one loads it
   as it is, where ``default`` reads its own grants; one with access management merged
   onto ``default``, so that it may read everyone else's.)
2. **The engine.** The real engine loads the same file, plus an overlay written here:
   for every user U a role ``__embedded_as_U`` holding exactly U's grants (ClickHouse's
   own rendering of them) and a profile ``__embedded_as_U`` inheriting U's profile with
   a few more constraints (below); the engine's ``default`` user, which every engine
   connection authenticates as, is replaced by a proxy that holds those roles and
   nothing else.
3. **Each request** authenticates in the HTTP layer against what the probe read, then
   its engine connection runs ``SET ROLE __embedded_as_U``: from then on ClickHouse's
   access checker judges every statement with U's grants, before it runs (code 497,
   ``ACCESS_DENIED``, the missing privilege named), and the connection carries U's
   settings and its profile's constraints.

What ClickHouse cannot enforce here is done by the HTTP layer, kept small and named:
``SET ROLE`` from a client is refused (it would pick another user's role); ``KILL
QUERY`` needs the ``KILL QUERY`` grant (every engine query belongs to one engine user,
so "your own queries" means nobody's here); a view whose ``DEFINER`` would be the engine
user must name its definer (guard.py); reads of ``system`` tables follow the server's
``select_from_system_db_requires_grant`` (system_tables.py: chDB never reads
``access_control_improvements``, so it grants every user every system table); quotas
and the per-user concurrency limit are counted per HTTP user (limits.py: all engine
queries belong to one engine user, so ClickHouse would count them together).
Authentication and the users' networks are auth.py's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import system_tables
from .auth import Credential, Hosts, parse_identification
from .errors import (
    AUTHENTICATION_FAILED,
    REQUIRED_PASSWORD,
    ClickHouseError,
)
from .limits import QUOTA_RESOURCES, Quota, QuotaInterval
from .system_tables import SystemGrants

log = logging.getLogger("local_clickhouse")

PREFIX = "__embedded_"
INTERNAL_ROLE = f"{PREFIX}internal"  # the server's own statements
EXTERNAL_ROLE = f"{PREFIX}external_data"  # creates a request's external tables
PROXY_PROFILE = f"{PREFIX}proxy"
# set on a request's connection when its Values data is to be read as literals
LITERAL_VALUES_PROFILE = f"{PREFIX}literal_values"

# Settings that name files the engine reads or writes (format schemas, Template format
# templates): clickhouse-local confines them to no folder, so here nobody may change them.
PATH_SETTINGS = (
    "format_schema",
    "output_format_schema",
    "format_template_resultset",
    "format_template_row",
    "format_template_resultset_format",
    "format_template_row_format",
    "format_schema_source",
)
# Expressions in Values data are evaluated by the engine, file() included, outside any
# access check. Off, under a constraint, for every user whose profile does not turn them
# on itself (see README: Security).
VALUES_EXPRESSIONS = (
    "input_format_values_interpret_expressions",
    "input_format_values_deduce_templates_of_expressions",
)

# -- accounts ---------------------------------------------------------------------------


@dataclass
class Account:
    """A user of the HTTP interface, as ClickHouse read it from the users file."""

    name: str
    credentials: tuple[Credential, ...]
    hosts: Hosts
    grants: tuple[str, ...]  # GRANT / REVOKE statements without the grantee
    profile_elements: tuple[dict[str, Any], ...]  # system.settings_profile_elements rows
    quota: Quota | None = None
    unsupported_auth: str = ""  # an authentication this server cannot check
    values_expressions: bool = False  # its profile turns on expressions in Values data
    # filled once the engine is up (Engine.prepare_accounts):
    settings: dict[str, str] = field(default_factory=dict)  # the profile's values
    readonly: int = 0
    can_kill: bool = False
    max_concurrent: int = 0  # max_concurrent_queries_for_user, 0: no limit
    show_tables: set[str] = field(default_factory=set)  # system tables a SHOW grant opens
    system_grants: SystemGrants = field(default_factory=SystemGrants)

    @property
    def role(self) -> str:
        return f"{PREFIX}as_{self.name}"

    @property
    def profile(self) -> str:
        return f"{PREFIX}as_{self.name}"

    @property
    def has_password(self) -> bool:
        return any(c.needs_password for c in self.credentials)


class Accounts:
    """Every user the users file defines, by name."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self.by_name = {a.name: a for a in accounts}

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    def authenticate(self, name: str | None, password: str | None, address: str | None) -> Account:
        name = name or "default"
        account = self.by_name.get(name)
        given = password or ""
        if account is not None and account.unsupported_auth:
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: the embedded ClickHouse cannot check "
                f"{account.unsupported_auth} authentication (use a password)",
            )
        ok = account is not None and any(c.check(given) for c in account.credentials)
        if not ok:
            if account is not None and account.has_password and not given:
                raise ClickHouseError(
                    REQUIRED_PASSWORD, f"{name}: Authentication failed: password is required"
                )
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: password is incorrect, or there is no user "
                "with such name.",
            )
        assert account is not None
        if not account.hosts.allows(address):
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{name}: Authentication failed: the user is not allowed to connect from "
                f"address {address}",
            )
        return account


# -- the users files: the operator's, and what the embedded server adds ----------------

# clickhouse-server's own users.xml (the image's /etc/clickhouse-server/users.xml): the
# base under a ``--users-d`` folder, as the server's users.d/ files sit on it.
SERVER_USERS_XML = """<clickhouse>
  <!-- clickhouse-server's default users.xml, as the clickhouse/clickhouse-server image
       ships it (comments dropped): the base that users.d/ files are merged onto -->
  <profiles>
    <default></default>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</clickhouse>
"""

# The users file of `wiki-events clickhouse` without --users: clickhouse-server's own,
# its `default` also allowed to read the access entities (SHOW USERS and the like) and,
# as the developer's administrator, to use expressions in Values data (the guard then
# reads such data as literals when it could call file(): server.py).
BUILTIN_USERS_XML = SERVER_USERS_XML.replace(
    "<quota>default</quota>\n",
    "<quota>default</quota>\n      <access_management>1</access_management>\n",
).replace(
    "<default></default>",
    "<default><input_format_values_interpret_expressions>1"
    "</input_format_values_interpret_expressions></default>",
)

# The overlay's file name sorts after any operator file in users.d/ (ClickHouse merges
# them in sorted order), so it has the last word.
OVERLAY_NAME = "~wiki-events-embedded.xml"


def stage(users_file: Path, dest: Path, extra: str | None) -> Path:
    """``dest`` made to hold ``users_file`` and what ClickHouse merges onto it (its
    ``<stem>.d/`` and ``conf.d/`` folders), as copies, plus ``extra`` as the last file of
    ``<stem>.d/``; returns the main file to load. ClickHouse does the merging itself.
    Copies, not links: what the engine loaded stays as it was read while the operator
    changes the originals (the reload compares them, ``watched_files``)."""
    import shutil

    users_file = users_file.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    main = dest / users_file.name
    shutil.copyfile(users_file, main)
    for folder in _merge_dirs(users_file):
        target = dest / folder.name
        target.mkdir(exist_ok=True)
        for item in _merged_files(folder):
            shutil.copyfile(item, target / item.name)
    if extra is not None:
        own = dest / users_file.with_suffix(".d").name
        own.mkdir(exist_ok=True)
        (own / OVERLAY_NAME).write_text(extra)
    return main


def server_users(users_d: Path, dest: Path) -> Path:
    """clickhouse-server's own users.xml at ``dest``, with ``users_d``'s files linked
    into its ``users.d/``: the server image's users with the operator's on top."""
    import shutil

    if not users_d.is_dir():
        raise UsersFileError(f"{users_d}: not a folder of users files")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "users.d").mkdir(parents=True)
    main = dest / "users.xml"
    main.write_text(SERVER_USERS_XML)
    for item in _merged_files(users_d):
        shutil.copyfile(item, dest / "users.d" / item.name)
    return main


def _merge_dirs(users_file: Path) -> list[Path]:
    return [users_file.with_suffix(".d"), users_file.parent / "conf.d"]


def _merged_files(folder: Path) -> list[Path]:
    """The files of ``folder`` ClickHouse merges (ConfigProcessor::getConfigMergeFiles:
    regular files, links followed, not starting with a dot)."""
    if not folder.is_dir():
        return []
    return [
        item
        for item in sorted(folder.iterdir())
        if item.is_file() and not item.name.startswith(".")
    ]


def watched_files(users_file: Path | None, users_d: Path | None) -> tuple[Any, ...]:
    """What clickhouse-server's config reloader looks at to decide that the users changed
    (each merged file's modification time, the list of files), as a value to compare:
    the users file and its ``.d/`` and ``conf.d/`` files, or a ``--users-d`` folder's."""
    if users_d is not None:
        files = _merged_files(users_d)
    elif users_file is not None:
        files = [users_file] + [f for d in _merge_dirs(users_file) for f in _merged_files(d)]
    else:
        return ()
    seen = []
    for item in files:
        try:
            st = item.stat()
        except OSError:
            continue  # gone meanwhile: the next look sees the folder without it
        seen.append((str(item), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(seen)


# -- the probe: ask ClickHouse what the users file says ----------------------------------

_PROBE_CONFIG = """<clickhouse>
  <users_config>{users}</users_config>
  <display_secrets_in_show_and_select>1</display_secrets_in_show_and_select>
  <logger><level>fatal</level></logger>
</clickhouse>
"""
# The engine logs in as ``default``, without a password; to read the other users it
# needs SHOW USERS and the like. Merged onto the file's ``default`` (or making one).
_PROBE_OVERLAY = """<clickhouse><users><default>
  {no_password}<access_management>1</access_management>
</default></users></clickhouse>
"""


class UsersFileError(ValueError):
    """A users file the embedded ClickHouse cannot use, with the reason."""


def probe(users_file: Path, work: Path) -> Accounts:
    """Read every user of ``users_file`` back from ClickHouse, in throw-away in-memory
    engines. The engine can only log in as a passwordless ``default``, so: one engine
    loads the file as it is (``default``, if it exists without a password, reads its own
    grants); another has ``default`` made readable (access management merged onto it,
    and ``<no_password/>`` unless it has a password element) and reads everyone."""
    try:
        own: list[str] | None = _with_engine(
            users_file, work / "as-is", None, lambda c: _lines(c, "SHOW GRANTS")
        )
    except _LoginFailed:
        own = None  # no `default`, or one with a password
    try:
        overlay = _PROBE_OVERLAY.format(no_password="<no_password/>")
        accounts = _with_engine(users_file, work / "read", overlay, _read_accounts)
        if own is None:
            # the file has no `default`: the one read here is the probe's own
            accounts.by_name.pop("default", None)
    except UsersFileError as exc:
        if not any(m in str(exc) for m in ("More than one field", "multiple authentication")):
            raise
        # `default` has a password element; it must be empty (the engine logs in so)
        overlay = _PROBE_OVERLAY.format(no_password="")
        accounts = _with_engine(users_file, work / "read", overlay, _read_accounts)
    if own is not None and "default" in accounts.by_name:
        accounts.by_name["default"].grants = tuple(without_grantee(g, "default") for g in own)
    return accounts


class _LoginFailed(UsersFileError):
    pass


def probe_apart(users_file: Path, work: Path, timeout: float = 120.0) -> Accounts:
    """``probe`` in a child process: one chDB engine lives in a process, and while the
    server's is open no throw-away engine can start beside it (a reload's case)."""
    import pickle
    import subprocess

    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE_CHILD, str(users_file), str(work)],
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode == 3:
        raise UsersFileError(done.stderr.decode("utf-8", "replace").strip())
    if done.returncode != 0:
        raise UsersFileError(
            f"{users_file}: reading the users failed: "
            + done.stderr.decode("utf-8", "replace").strip()[-2000:]
        )
    accounts = pickle.loads(done.stdout)
    assert isinstance(accounts, Accounts)
    return accounts


# probe_apart's child: USERS_FILE WORK -> the Accounts, pickled (this module imported by
# its name, so that the parent unpickles the same classes)
_PROBE_CHILD = (
    "import sys; from local_clickhouse.access import _probe_main; "
    "sys.exit(_probe_main(sys.argv[1:]))"
)


def _probe_main(argv: list[str]) -> int:
    import pickle

    try:
        accounts = probe(Path(argv[0]), Path(argv[1]))
    except UsersFileError as exc:
        sys.stderr.write(f"{exc}\n")
        return 3
    sys.stdout.buffer.write(pickle.dumps(accounts))
    return 0


def _with_engine(users_file: Path, work: Path, extra: str | None, read: Any) -> Any:
    import chdb

    main = stage(users_file, work / "users", extra)
    config = work / "probe.xml"
    config.write_text(_PROBE_CONFIG.format(users=xml_text(str(main))))
    try:
        with _stderr_captured() as captured:
            conn = chdb.connect(f":memory:?config-file={config}")
    except Exception as exc:  # noqa: BLE001 - the engine's reason, in one line
        # chDB's exception says only "Error initializing EmbeddedServer"; the engine
        # wrote its reason to the standard error
        error = captured.read() + "\n" + str(exc)
        if "default: Authentication failed" in error:
            raise _LoginFailed(_load_failure(users_file, error)) from None
        raise UsersFileError(_load_failure(users_file, error)) from None
    try:
        return read(conn)
    finally:
        conn.close()


class _Captured:
    def __init__(self) -> None:
        self.text = ""

    def read(self) -> str:
        return self.text


@contextlib.contextmanager
def _stderr_captured() -> Iterator[_Captured]:
    """What is written to file descriptor 2 meanwhile (the engine's own messages), for
    the error; only while a probe's engine starts, before the server serves."""
    import tempfile

    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode("utf-8", "replace")


def _engine_reason(error: str) -> str:
    """chDB's connect error names only "Error initializing EmbeddedServer"; the engine's
    own reason is the first ``Code: N`` message in it, when there is one."""
    found = re.search(r"Code: \d+\. DB::Exception: (?!Error initializing)(.+)", error)
    first = error.strip().splitlines()[0] if error.strip() else error
    return found.group(1).strip() if found else first


def _load_failure(users_file: Path, error: str) -> str:
    if "default: Authentication failed" in error:
        return (
            f"{users_file}: the user `default` has a password; the embedded ClickHouse's "
            "engine (chDB) always logs in as `default` without one, so here `default` "
            "must have none (as the clickhouse-server image's own users.xml has). Name "
            "your administrator another user, or use a real clickhouse-server"
        )
    if "can't be specified with `grants`" in error and "'default'" in error:
        return (
            f"{users_file}: the user `default` has <grants>; the embedded ClickHouse reads "
            "the users through `default` and must give it access management, which "
            "ClickHouse does not allow beside <grants>. Leave `default` without <grants>, "
            "or name your users differently"
        )
    return f"{users_file}: ClickHouse cannot load this users file: {_engine_reason(error)}"


def _lines(conn: Any, sql: str) -> list[str]:
    text = bytes(conn.query(sql, "TSVRaw").bytes()).decode()
    return [line for line in text.splitlines() if line.strip()]


def _rows(conn: Any, sql: str) -> list[dict[str, Any]]:
    data = bytes(conn.query(sql, "JSONEachRow").bytes())
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _read_accounts(conn: Any) -> Accounts:
    secrets = "SETTINGS format_display_secrets_in_show_and_select = 1"
    users = _rows(
        conn,
        "SELECT name, host_ip, host_names, host_names_regexp, host_names_like FROM system.users",
    )
    elements = _rows(conn, "SELECT * FROM system.settings_profile_elements ORDER BY index")
    quotas = _read_quotas(conn)
    accounts = []
    for user in users:
        name = user["name"]
        create = bytes(
            conn.query(f"SHOW CREATE USER {_ident(name)} {secrets}", "TSVRaw").bytes()
        ).decode()
        grants = bytes(conn.query(f"SHOW GRANTS FOR {_ident(name)}", "TSVRaw").bytes()).decode()
        grants = "\n".join(_representable(conn, name, grants.splitlines()))
        credentials, unsupported = parse_identification(create)
        own = [e for e in elements if e.get("user_name") == name]
        inherited = [e["inherit_profile"] for e in own if e.get("inherit_profile")]
        accounts.append(
            Account(
                name=name,
                credentials=credentials,
                hosts=Hosts(
                    ips=tuple(ipaddress.ip_network(i, strict=False) for i in user["host_ip"]),
                    names=tuple(user["host_names"]),
                    regexps=tuple(user["host_names_regexp"]),
                    likes=tuple(user["host_names_like"]),
                ),
                grants=tuple(
                    without_grantee(line, name) for line in grants.splitlines() if line.strip()
                ),
                profile_elements=tuple(own),
                quota=quotas.get(name),
                unsupported_auth=unsupported,
                values_expressions=_sets(elements, inherited, VALUES_EXPRESSIONS[0]) == "1",
            )
        )
    return Accounts(accounts)


def _representable(conn: Any, user: str, grants: list[str]) -> Iterator[str]:
    """The user's grants that a role's <grants> can hold. ClickHouse renders some grants
    in a form it cannot parse back (``GRANT ALL ON db.*`` also shows as ``GRANT READ,
    WRITE ON db``, a source named like the database): such a grant is left out of the
    user's role, with a warning (the user then has less, never more)."""
    for line in grants:
        if not line.strip():
            continue
        try:
            conn.query("EXPLAIN AST " + line, "TSV")
        except Exception:  # noqa: BLE001 - the engine's parser refuses it
            log.warning("user %s: grant not kept (ClickHouse cannot read it back): %s", user, line)
            continue
        yield line


def _read_quotas(conn: Any) -> dict[str, Quota]:
    """Each user's quota (a fresh counter per user: ClickHouse keys them by user name)."""
    quotas = _rows(
        conn, "SELECT name, apply_to_all, apply_to_list, apply_to_except FROM system.quotas"
    )
    limits = _rows(conn, "SELECT * FROM system.quota_limits")
    users = [r["name"] for r in _rows(conn, "SELECT name FROM system.users")]
    out: dict[str, Quota] = {}
    for quota in quotas:
        applies = (
            [u for u in users if u not in quota["apply_to_except"]]
            if quota["apply_to_all"]
            else [u for u in quota["apply_to_list"] if u in users]
        )
        rows = [r for r in limits if r["quota_name"] == quota["name"]]
        for user in applies:
            intervals = []
            for row in rows:
                maxima = {
                    resource: float(row[column])
                    for column, resource in QUOTA_RESOURCES.items()
                    if row.get(column) is not None
                }
                if maxima:
                    intervals.append(QuotaInterval(int(row["duration"]), maxima))
            if intervals and user not in out:
                out[user] = Quota(quota["name"], intervals)
    return out


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def without_grantee(statement: str, user: str) -> str:
    """``GRANT ... TO user [WITH ... OPTION]`` (or ``REVOKE ... FROM user``) without its
    grantee: the form a role's ``<grants>`` in a users file takes."""
    names = {re.escape(user), re.escape(_ident(user))}
    pattern = re.compile(
        r"\s+(?:TO|FROM)\s+(?:" + "|".join(names) + r")(?=(?:\s+WITH\s+\w+\s+OPTION)*\s*$)"
    )
    stripped, count = pattern.subn("", statement.strip(), count=1)
    if count != 1:
        raise ValueError(f"cannot read the grantee {user!r} in {statement!r}")
    return stripped


# -- the engine's users overlay ----------------------------------------------------------


def overlay(accounts: Accounts) -> str:
    """The users-file fragment the engine loads after the operator's: a role and a
    profile per user, and the proxy that every engine connection authenticates as."""
    roles = [
        _role(INTERNAL_ROLE, ["GRANT ALL ON *.* WITH GRANT OPTION"]),
        _role(EXTERNAL_ROLE, ["GRANT CREATE TEMPORARY TABLE ON *.*"]),
    ]
    path_consts = "".join(f"<{n}><const/></{n}>" for n in PATH_SETTINGS)
    literal = "".join(f"<{n}>0</{n}>" for n in VALUES_EXPRESSIONS)
    literal_max = "".join(f"<{n}><max>0</max></{n}>" for n in VALUES_EXPRESSIONS)
    profiles = [
        f"<{PROXY_PROFILE}><constraints>{path_consts}</constraints></{PROXY_PROFILE}>",
        f"<{LITERAL_VALUES_PROFILE}>{literal}<constraints>{literal_max}</constraints>"
        f"</{LITERAL_VALUES_PROFILE}>",
    ]
    for account in accounts:
        # naming itself as a view's DEFINER needs SET DEFINER here (the engine's current
        # user is the proxy), which a real server never asks of the definer itself
        own = [*account.grants, f"GRANT SET DEFINER ON {_ident(account.name)}"]
        roles.append(_role(account.role, own))
        profiles.append(_profile(account))
    names = [INTERNAL_ROLE, EXTERNAL_ROLE, *[a.role for a in accounts]]
    grants = ", ".join(_ident(n) for n in names)
    return (
        "<clickhouse>\n"
        "  <!-- written by local_clickhouse/access.py at every start; see its docstring -->\n"
        f"  <profiles>\n    {chr(10).join(profiles)}\n  </profiles>\n"
        f"  <roles>\n    {chr(10).join(roles)}\n  </roles>\n"
        "  <users>\n"
        '    <default replace="replace">\n'
        "      <no_password/>\n"
        "      <networks><ip>::/0</ip></networks>\n"
        f"      <profile>{PROXY_PROFILE}</profile>\n"
        f"      <grants><query>GRANT {xml_text(grants)}</query></grants>\n"
        "    </default>\n"
        "  </users>\n"
        "</clickhouse>\n"
    )


def _role(name: str, grants: Iterable[str]) -> str:
    queries = "".join(f"<query>{xml_text(g)}</query>" for g in grants)
    return f"<{name}><grants>{queries}</grants></{name}>"


def _profile(account: Account) -> str:
    parts = []
    for element in account.profile_elements:
        if element.get("inherit_profile"):
            parts.append(f"<profile>{xml_text(element['inherit_profile'])}</profile>")
        elif element.get("setting_name") and element.get("value") is not None:
            name = element["setting_name"]
            parts.append(f"<{name}>{xml_text(str(element['value']))}</{name}>")
    constraints = "".join(f"<{n}><const/></{n}>" for n in PATH_SETTINGS)
    if not account.values_expressions:
        # at most 0: turning them off (as here) is a change a const would refuse
        parts += [f"<{n}>0</{n}>" for n in VALUES_EXPRESSIONS]
        constraints += "".join(f"<{n}><max>0</max></{n}>" for n in VALUES_EXPRESSIONS)
    body = "".join(parts) + f"<constraints>{constraints}</constraints>"
    return f"<{account.profile}>{body}</{account.profile}>"


def _sets(elements: list[dict[str, Any]], profiles: Iterable[str], setting: str) -> str | None:
    """The value the first of ``profiles`` (or a profile it inherits) gives ``setting``."""
    seen: set[str] = set()
    found: str | None = None

    def walk(profile: str) -> None:
        nonlocal found
        if profile in seen:
            return
        seen.add(profile)
        for e in elements:
            if e.get("profile_name") != profile:
                continue
            if e.get("inherit_profile"):
                walk(e["inherit_profile"])
            elif e.get("setting_name") == setting and e.get("value") is not None:
                found = str(e["value"])

    for profile in profiles:
        walk(profile)
    return found


# -- acting as a user on an engine connection --------------------------------------------


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def assignments(settings: Mapping[str, str]) -> str:
    return ", ".join(f"{k} = {quote(v)}" for k, v in settings.items())


def _settings(raw: Any, suffix: str = "") -> dict[str, str]:
    rows = bytes(
        raw.query(f"SELECT name, value FROM system.settings{suffix}", "JSONCompactEachRow").bytes()
    )
    return dict(json.loads(line) for line in rows.splitlines() if line.strip())


def prepare(accounts: Accounts, anchor: Any, connect: Any) -> None:
    """Fill in what each account's engine connections need, as the engine computes it:
    its profile's settings, readonly level and concurrency limit, whether it may KILL,
    and which system tables its grants open outright."""
    base = _settings(anchor)
    for account in accounts:
        # a fresh connection each: a query's SETTINGS profile leaves the profile's
        # constraints on its connection
        conn = connect()
        try:
            values = _settings(conn.raw, f" SETTINGS profile = {quote(account.profile)}")
        finally:
            conn.close()
        changed = {n: v for n, v in values.items() if base.get(n) != v}
        account.readonly = int(changed.pop("readonly", base.get("readonly", "0")) or 0)
        account.max_concurrent = int(values.get("max_concurrent_queries_for_user", "0") or 0)
        changed.update(_insert_blocks(values, changed))
        account.settings = changed
        conn = connect()
        try:
            conn.raw.query(f"SET ROLE {_ident(account.role)}", "TSV")
            account.can_kill = _granted(conn.raw, "KILL QUERY ON *.*")
            account.show_tables = {
                table
                for table, privilege in system_tables.SHOW_PRIVILEGE_TABLES.items()
                if _granted(conn.raw, f"{privilege} ON *.*")
            }
        finally:
            conn.close()
        account.system_grants = system_tables.read_grants(anchor, account.role)


def _insert_blocks(values: Mapping[str, str], set_by_profile: Mapping[str, str]) -> dict[str, str]:
    """For a user with a max_memory_usage, INSERT blocks its size can hold: the engine
    squashes a big INSERT into blocks of up to 256 MiB by default, and the memory it
    frees on the way is not the query's any more but still the process's, so a user
    with a 256 MiB limit took the server 500 MiB up with one INSERT. What the profile
    sets itself stays."""
    memory = int(values.get("max_memory_usage", "0") or 0)
    if not memory:
        return {}
    caps = {
        "min_insert_block_size_bytes": memory // 8,
        "max_insert_block_size": max(8192, memory // 1024),
        "min_insert_block_size_rows": max(8192, memory // 1024),
    }
    out = {}
    for name, cap in caps.items():
        current = int(values.get(name, "0") or 0)
        if name not in set_by_profile and current > cap:
            out[name] = str(cap)
    return out


def _granted(raw: Any, privilege: str) -> bool:
    """ClickHouse's own answer for the connection's current roles (implicit grants too)."""
    return bytes(raw.query(f"CHECK GRANT {privilege}", "TSV").bytes()).strip() == b"1"


def act_as(raw: Any, account: Account) -> None:
    """An engine connection made to act as ``account`` for good (an HTTP session's):
    its role, its profile's constraints and settings, its readonly level; and the
    connection's own statements logged again (it was opened with log_queries=0)."""
    raw.query(f"SET ROLE {_ident(account.role)}", "TSV")
    if account.readonly != 1:
        raw.query(f"SET profile = {quote(account.profile)}", "TSV")
    final = {**account.settings, "log_queries": "1"}
    if account.readonly:
        final["readonly"] = str(account.readonly)
    raw.query(f"SET {assignments(final)}", "TSV")

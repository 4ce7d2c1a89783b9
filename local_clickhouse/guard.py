"""What a query may touch, decided on the engine's own parse of it.

chDB runs as ``clickhouse-local``, which skips the server's ``user_files_path`` check:
``file('/etc/passwd')``, a ``File`` engine table, ``INTO OUTFILE`` and the like reach
any path the process can. A real server refuses ``INTO OUTFILE`` over HTTP and
confines ``file()`` and its kin to ``user_files_path``; this module does the same.

The query is never judged by its text: the engine parses it (``EXPLAIN AST``, with
the request's query parameters substituted) and the tree it prints is walked. Escaped
identifiers (`` `fi\\x6ce` ``), comments, case, heredocs and parameters are therefore
resolved the way the engine resolves them. Running the parse costs 0.4 ms for a short
query and ~2 ms for one of the dashboard's (more on a busy machine), so it runs only
when the text or a parameter's value could name something guarded: every
guarded name and keyword has to appear literally (case aside), unless an escape spells
it, and a path has a slash touching one of its characters, so a query without any of
them, and without a backslash, cannot be one (`a / b` is a division). The parse, like
the guard's other statements, runs on a connection of its own that is not logged, so
``system.query_log`` holds the request's query alone (see ``Guard``).

Who may read or write which table, file or URL is not decided here: every statement
runs under its user's role, and ClickHouse's own access checker refuses what the user's
grants do not allow (access.py). What is left here is what chDB cannot enforce, for every
user including the admin:

- ``INTO OUTFILE`` and ``FROM INFILE`` are refused (INTO_OUTFILE_NOT_ALLOWED);
- the path-taking functions, table functions and engines (``file``, ``File``,
  ``FileLog``, ``url`` with a ``file://`` URL, ``sqlite``, ``EmbeddedRocksDB``,
  ``icebergLocal``...) take string literals whose paths stay inside the user files
  folder (relative paths resolve there: the server's working directory is that
  folder); anything computed (a function, a parameter of a lambda) is refused;
- dictionaries may not run programs (``EXECUTABLE``, ``LIBRARY`` sources), and a
  source's strings (SQL the engine runs itself) may not name a guarded function;
- INSERT ... VALUES data is outside the parse: the server reads it as literals only
  when its text could name a guarded function (server.py);
- a table named by a path (``SELECT * FROM '/etc/hostname'``, which the default
  database's file overlay reads) is a path like any other;
- ``SET ROLE`` is refused: every request acts with its own user's role;
- ``KILL QUERY`` needs the ``KILL QUERY`` grant (all engine queries have one owner);
- a view's or a materialized view's ``DEFINER`` may not be the engine's user (``SQL
  SECURITY DEFINER`` without a name, or ``DEFINER = CURRENT_USER``): the view would run
  with every user's rights;
- custom disks (``disk(type = ...)`` in SETTINGS) are refused: they open folders and
  hosts chosen by the query;
- GET requests may not ``KILL`` or run ``SYSTEM`` statements;
- nothing reaches other hosts (``url``, ``s3``, ``remote``, ``mysql``, ``bigquery``... as
  table functions, engines or dictionary sources, UNACCEPTABLE_URL) unless the admin
  allows network access when starting the server (``LOCAL_CLICKHOUSE_ALLOW_NETWORK``);
- ``python()`` and ``arrowstream()`` (chDB's own, reading the server process's objects)
  and ``eval()`` (a query built while the query runs) are refused;
- a query parameter set in a session (``SET param_t = ...``) may not hold what could
  name something guarded: it is substituted in a later request whose text does not
  show it (a request's own ``param_`` values are judged with its query).

Relative paths (``file('x')``, ``SELECT * FROM 'x'``) resolve in the user files folder:
the server makes it its working directory before chDB starts (serve.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import sqltext
from .access import Account, assignments
from .errors import (
    ACCESS_DENIED,
    DATABASE_ACCESS_DENIED,
    INTO_OUTFILE_NOT_ALLOWED,
    READONLY,
    UNACCEPTABLE_URL,
    ClickHouseError,
)

# Names (lower case) of functions, table functions, engines and dictionary sources
# whose string arguments are paths on the server's disk.
PATH_FUNCTIONS = frozenset(
    {
        "file",
        "filesystem",
        "filecluster",
        "filelog",
        "sqlite",
        "embeddedrocksdb",
        "iceberglocal",
        "iceberglocalcluster",
        "deltalakelocal",
        "deltalakelocalcluster",
        "hudilocal",
        "paimonlocal",
        "paimonlocalcluster",
    }
)
URL_FUNCTIONS = frozenset({"url", "urlcluster"})
# Table functions, table and database engines and dictionary sources that reach other
# hosts: refused unless the admin allows network access (LOCAL_CLICKHOUSE_ALLOW_NETWORK).
# (A server's remote_url_allow_hosts would do this, but chDB does not apply it.)
NETWORK_FUNCTIONS = URL_FUNCTIONS | frozenset(
    {
        "s3",
        "s3cluster",
        "s3queue",
        "gcs",
        "oss",
        "cosn",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "distributed",
        "mysql",
        "materializedmysql",
        "postgresql",
        "materializedpostgresql",
        "mongodb",
        "redis",
        "hdfs",
        "hdfscluster",
        "azureblobstorage",
        "azureblobstoragecluster",
        "azurequeue",
        "iceberg",
        "icebergs3",
        "icebergs3cluster",
        "icebergazure",
        "icebergazurecluster",
        "iceberghdfs",
        "iceberghdfscluster",
        "deltalake",
        "deltalakes3",
        "deltalakecluster",
        "deltalakeazure",
        "hudi",
        "hudicluster",
        "paimon",
        "paimons3",
        "paimonazure",
        "paimonhdfs",
        "jdbc",
        "odbc",
        "kafka",
        "nats",
        "rabbitmq",
        "arrowflight",
        "ytsaurus",
        "http",
        "cassandra",
        "externaldistributed",
        "bigquery",
        "icebergcluster",
        "deltalakes3cluster",
        "deltalakeazurecluster",
        "paimoncluster",
        "paimons3cluster",
        "paimonazurecluster",
        "paimonhdfscluster",
        "datalakecatalog",  # a database engine: its catalog's URL is asked at CREATE
    }
)
# Table functions no server has, or whose query is made at run time: refused for
# everyone. chDB's python() reads objects of the server's own Python process,
# arrowstream() its registry of Arrow streams; eval() runs a query built while the query
# runs (from unhex(...), say), which no parse here can see.
REFUSED_FUNCTIONS = frozenset({"python", "arrowstream", "eval"})
# Dictionary sources that run programs or load libraries.
PROGRAM_SOURCES = frozenset({"executable", "executable_pool", "library"})

# Every guarded name contains one of these; a query whose text (lower-cased) contains
# none of them and no backslash cannot reach a guarded function.
_FILE_TRIGGERS = (
    "file",
    "url",
    "sqlite",
    "rocksdb",
    "local",
    "executable",
    "library",
    "\\",
)
# ... and every name in NETWORK_FUNCTIONS one of these (url is above): s3, gcs, cosn,
# remote, cluster, mysql, postgresql, mongodb, redis, hdfs, azure..., iceberg, deltalake,
# hudi, paimon, jdbc, odbc, kafka, nats, rabbitmq, arrowflight, ytsaurus, http,
# cassandra, (external)distributed.
_NETWORK_TRIGGERS = (
    "s3",
    "gcs",
    "oss",
    "cosn",
    "remote",
    "cluster",
    "sql",
    "mongo",
    "redis",
    "hdfs",
    "azure",
    "iceberg",
    "deltalake",
    "hudi",
    "paimon",
    "dbc",
    "kafka",
    "nats",
    "rabbit",
    "flight",
    "ytsaurus",
    "http",
    "cassandra",
    "distributed",
    "bigquery",
    "datalakecatalog",
)
# ... and the rest: SET ROLE, KILL, a view's definer, a custom disk, a remote CLICKHOUSE
# dictionary source (its host and port keys only show in the formatted query).
# A parameter set in a session (SET param_t = ...) is substituted later, into a query
# whose text alone does not show it: "param_" has the SET parsed and its values judged.
_OTHER_TRIGGERS = ("role", "kill", "definer", "security", "disk", "clickhouse")
_TRIGGERS = _FILE_TRIGGERS + _NETWORK_TRIGGERS + _OTHER_TRIGGERS + tuple(REFUSED_FUNCTIONS)
_SESSION_PARAMETER = b"param_"
# A table named by a path has a slash in it, touching a character of the path: an
# absolute path's first slash follows the opening quote (or starts a parameter's value),
# a relative one that climbs has `../`. A slash with white space on both sides is a
# division (`a / b`), which no path can be.
_PATH_SLASH = re.compile(rb"(?<!\s)/|/(?!\s)")
# The settings that steer the engine's parser, carried to the guard's own parse.
PARSER_SETTINGS = frozenset(
    {
        "max_query_size",
        "max_parser_depth",
        "max_parser_backtracks",
        "dialect",
        "implicit_select",
        "allow_settings_after_format_in_insert",
    }
)

# words of what only the engine's formatting of the query shows (Guard._check_formatted)
_FORMATTED_TRIGGERS = (
    b"outfile",
    b"infile",
    b"attach",
    b"definer",
    b"security",
    b"disk",
    b"clickhouse",
)

_LINE = re.compile(r"^( *)(\S.*?)\s*$")
_NODE = re.compile(r"^(Function|FunctionWithKeyValueArguments)\s+(\S+)")
_LITERAL = re.compile(r"^Literal '(.*)'$")
_IDENT = re.compile(r"^Identifier (.*)$")
_TABLE_IDENT = re.compile(r"^(?:Table)?Identifier (.*)$")
_FORMAT_FUNCTION = re.compile(r"^Function format\b", re.I)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0", "a": "\a", "v": "\v"}
_RANGE = re.compile(r"\{\d+\.\.\d+\}")
_BRACES = re.compile(r"\{[^{}/]*\}")


@dataclass
class _Node:
    depth: int
    text: str


def _unquote(body: str) -> str | None:
    """The value of a literal as EXPLAIN AST prints it (backslash escapes); None if odd."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body):
                return None
            nxt = body[i + 1]
            if nxt in "\\'\"`":
                out.append(nxt)
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", body[i + 2 : i + 4]):
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 2
            else:
                return None
            i += 2
        elif ch == "'":
            return None  # an unescaped quote: not one literal
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Parsed:
    root: str  # the root of the tree: ``Set``, ``UseQuery db``, ``InsertQuery``...
    insert_settings: bool  # an INSERT with its own SETTINGS clause
    insert_select: bool  # an INSERT ... SELECT (no inline data)
    has_settings: bool = False  # a SETTINGS clause anywhere in it
    reads_values: bool = False  # Values data in its text: INSERT ... VALUES, format()


def _escaped(value: str) -> str:
    """A query parameter's value is read in the escaped (TSV) form."""
    return (
        value.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def _could_name(text: bytes) -> bool:
    """Whether ``text`` could name a guarded function, engine, statement or path."""
    lowered = text.lower()
    return any(t.encode() in lowered for t in _TRIGGERS) or bool(_PATH_SLASH.search(lowered))


class Guard:
    def __init__(
        self, user_files: str, quiet: Callable[[], Any], allow_network: bool = False
    ) -> None:
        """``quiet`` opens an engine connection whose statements stay out of
        ``system.query_log``: the guard's own statements (EXPLAIN AST, the formatting)
        hold the query's text, and on the request's connection they were logged beside
        the query, where clients that look their query up by its text found them
        (dbt-clickhouse's projection tests, whose schemas are named dbt_clickhouse_...).
        They only parse, with the settings that steer the parser taken from the
        request's user and URL (``PARSER_SETTINGS``: a raised ``max_query_size``...);
        one an HTTP session SET earlier is not carried over, so such a query can be
        refused by the guard's parse, never let through by it."""
        self.user_files = os.path.normpath(user_files)
        self.quiet = quiet
        self.allow_network = allow_network

    # -- paths -------------------------------------------------------------------------

    def path_allowed(self, path: str) -> bool:
        """Inside the user files folder, globs included ({a,b}, *, ?, {1..9})."""
        if path.lower().startswith("file://"):
            path = path[len("file://") :]
        if "~" in path or "\0" in path:
            return False
        rest = _RANGE.sub("0", path)
        if ".." in rest:
            return False
        if "{" in _BRACES.sub("", rest) or "}" in _BRACES.sub("", rest):
            return False  # an alternative with a slash or nested braces
        if not os.path.isabs(path):
            return True
        return os.path.normpath(path).startswith(self.user_files + os.sep)

    def _quiet_query(
        self, sql: bytes, params: Mapping[str, str], settings: Mapping[str, str]
    ) -> bytes:
        """One of the guard's own statements, kept out of system.query_log, parsed
        with the request's parser settings."""
        conn = self.quiet()
        try:
            parser = {k: v for k, v in settings.items() if k in PARSER_SETTINGS}
            if parser:
                conn.raw.query(f"SET {assignments(parser)}", "TSV")
            return bytes(conn.raw.query(sql, "TSVRaw", params=dict(params)).bytes())
        finally:
            conn.close()

    def _deny_path(self, function: str, path: str) -> ClickHouseError:
        return ClickHouseError(
            DATABASE_ACCESS_DENIED,
            f"File `{path}` is not inside `{self.user_files}` (the user files folder; "
            f"{function} reads and writes only there)",
        )

    # -- the check ----------------------------------------------------------------------

    @staticmethod
    def needs_parse(query: bytes, params: Mapping[str, str] | None = None) -> bool:
        """Whether the text, or a parameter's value (the engine substitutes it: a
        ``{t:Identifier}`` names a table), could name something guarded, or the text
        sets a parameter for later (in a session)."""
        return _SESSION_PARAMETER in query.lower() or any(
            _could_name(text) for text in (query, *(v.encode() for v in (params or {}).values()))
        )

    @staticmethod
    def could_name_file(query: bytes) -> bool:
        """Whether the text could name a file function (the network ones are table
        functions and engines, which INSERT ... VALUES data cannot call)."""
        lowered = query.lower()
        return any(t.encode() in lowered for t in _FILE_TRIGGERS)

    def check(
        self,
        query: bytes,
        params: Mapping[str, str],
        query_class: int,
        account: Account,
        get: bool,
        settings: Mapping[str, str],
        force: bool = False,
    ) -> Parsed | None:
        """Raise if ``query`` may not run for ``account`` (``get``: over GET; ``settings``:
        the request's, its user's profile's and its URL's).

        ``query_class`` is chDB's classification (3 = control statements: SET, USE,
        KILL, SYSTEM, DDL...); only those (over GET) and texts that could name a guarded
        function or statement (or all, with ``force``) are parsed. Returns what the parse
        says, None when not parsed.
        """
        lowered = query.lower()
        if any(w in lowered for w in _FORMATTED_TRIGGERS):
            self._check_formatted(query, account, settings)
        control = query_class == 3
        if not (force or self.needs_parse(query, params) or (get and control)):
            return None
        tree = self._quiet_query(b"EXPLAIN AST " + query, params, settings)
        nodes = []
        for line in bytes(tree).decode("utf-8", "replace").splitlines():
            m = _LINE.match(line)
            if m:
                nodes.append(_Node(len(m.group(1)), m.group(2)))
        if not nodes:
            return None
        root = nodes[0].text
        parsed = Parsed(
            root=root,
            insert_settings=root.startswith("InsertQuery")
            and any(n.depth == nodes[0].depth + 1 and n.text == "Set" for n in nodes),
            insert_select=root.startswith("InsertQuery")
            and any(
                n.depth == nodes[0].depth + 1 and n.text.startswith("SelectWithUnionQuery")
                for n in nodes
            ),
            has_settings=any(n.text == "Set" for n in nodes[1:]),
            reads_values=any(_FORMAT_FUNCTION.match(n.text) for n in nodes)
            or (
                root.startswith("InsertQuery")
                and not any(
                    n.depth == nodes[0].depth + 1 and n.text.startswith("SelectWithUnionQuery")
                    for n in nodes
                )
            ),
        )
        self._check_statement(root, account, get)
        if (
            root.startswith("Set")
            and _SESSION_PARAMETER in lowered
            and _could_name(lowered.replace(_SESSION_PARAMETER, b""))
        ):
            # the value is substituted in a later request of the session, whose text
            # does not show it: a value that could name something guarded is refused
            raise ClickHouseError(
                ACCESS_DENIED,
                "A query parameter set with SET may not hold a path or the name of a file "
                "or network function in the embedded ClickHouse (no check would see it where "
                "it is substituted): send it with the request instead (param_<name>=...)",
            )
        in_udf = root.startswith("CreateSQLFunctionQuery")
        for idx, node in enumerate(nodes):
            self._check_table_path(nodes, idx)
            m = _NODE.match(node.text)
            if not m:
                continue
            kind, name = m.group(1), m.group(2).lower()
            args = self._children(nodes, idx)
            if kind == "FunctionWithKeyValueArguments" and name in PROGRAM_SOURCES:
                raise ClickHouseError(
                    ACCESS_DENIED,
                    f"Dictionary source {name.upper()} runs programs on the server and is "
                    "not allowed in the embedded ClickHouse",
                )
            if name in REFUSED_FUNCTIONS:
                raise ClickHouseError(
                    ACCESS_DENIED,
                    f"{m.group(2)}() is not available in the embedded ClickHouse (a server "
                    "has no python() or arrowstream(); eval() runs a query no check sees)",
                )
            if name in URL_FUNCTIONS:
                self._check_url(name, args)
            if name in NETWORK_FUNCTIONS and not self.allow_network:
                raise ClickHouseError(
                    UNACCEPTABLE_URL,
                    f"{m.group(2)} reaches other hosts over the network, which the embedded "
                    "ClickHouse refuses unless its admin allows it "
                    "(LOCAL_CLICKHOUSE_ALLOW_NETWORK=1 when starting `wiki-events clickhouse`)",
                )
            if kind == "FunctionWithKeyValueArguments" and name not in PATH_FUNCTIONS:
                self._check_source_strings(name, args)
            if name in PATH_FUNCTIONS:
                if in_udf:
                    raise ClickHouseError(
                        ACCESS_DENIED,
                        f"A SQL function may not call {m.group(2)}(): its path would not be "
                        "checked where the function is used",
                    )
                storage = any(
                    nodes[j].text.startswith("Storage definition")
                    for j in self._ancestors(nodes, idx)
                )
                self._check_path_args(m.group(2), args, storage)
        return parsed

    @staticmethod
    def _check_statement(root: str, account: Account, get: bool) -> None:
        if root.startswith("SetRoleQuery"):
            raise ClickHouseError(
                ACCESS_DENIED,
                f"{account.name}: SET ROLE is not available in the embedded ClickHouse: "
                "every request acts with all the roles its user is granted",
            )
        kill = root.startswith("KillQueryQuery")
        if get and (kill or root.startswith("SYSTEM")):
            raise ClickHouseError(
                ACCESS_DENIED if kill else READONLY,
                f"{account.name}: Cannot execute query in readonly mode: "
                f"{'KILL' if kill else 'SYSTEM'} statements need POST",
            )
        if kill and (not account.can_kill or account.readonly):
            # a real server lets a user (a read-only one too) kill its own queries without
            # the grant; here every engine query has the same owner, so "its own" cannot
            # be told apart: KILL needs the grant, and a user that may write
            raise ClickHouseError(
                ACCESS_DENIED,
                f"{account.name}: Not enough privileges. To execute this query, it's "
                "necessary to have the grant KILL QUERY ON *.* and not be read-only (in the "
                "embedded ClickHouse also to kill a user's own queries)",
            )

    def _check_table_path(self, nodes: list[_Node], idx: int) -> None:
        """A table named by a path: the default database reads files through it."""
        m = _TABLE_IDENT.match(nodes[idx].text)
        if not m or "/" not in m.group(1):
            return
        name = m.group(1)
        if name.startswith("default."):
            name = name[len("default.") :]
        if not self.path_allowed(name):
            raise self._deny_path("a table named by its path", name)

    def _check_formatted(self, query: bytes, account: Account, settings: Mapping[str, str]) -> None:
        """What shows only in the engine's own formatting of the query (no comments;
        literals always single-quoted with backslash escapes, which sqltext's lexer reads
        exactly): INTO OUTFILE, FROM INFILE, ATTACH ... FROM 'path', a view's definer, a
        custom disk, a CLICKHOUSE dictionary source on another host."""
        text = self._quiet_query(
            b"SELECT formatQuerySingleLine({q:String})",
            {"q": _escaped(query.decode("utf-8", "replace"))},
            settings,
        ).decode("utf-8", "replace")
        words = list(sqltext.tokens(text))
        previous = ""
        for i, (_, end, word) in enumerate(words):
            following = text[end:].lstrip()
            if (previous, word) in (("INTO", "OUTFILE"), ("FROM", "INFILE")):
                raise ClickHouseError(
                    INTO_OUTFILE_NOT_ALLOWED,
                    f"{previous} {word} is not allowed over HTTP: the embedded ClickHouse "
                    "reads and writes files only through file() inside the user files folder",
                )
            attach = words[0][2] == "ATTACH"
            if attach and word == "FROM" and following.startswith("'"):
                raise ClickHouseError(
                    DATABASE_ACCESS_DENIED,
                    "ATTACH ... FROM a path is not allowed in the embedded ClickHouse",
                )
            if word == "DEFINER" and following.startswith("="):
                definer = words[i + 1][2] if i + 1 < len(words) else ""
                if definer == "CURRENT_USER" and account.name != "default":
                    raise ClickHouseError(
                        ACCESS_DENIED,
                        f"{account.name}: a view's DEFINER must be named in the embedded "
                        "ClickHouse (DEFINER = CURRENT_USER, or SQL SECURITY DEFINER without "
                        "a name, would be the engine's own user, who holds every user's "
                        f"rights): write DEFINER = {account.name}",
                    )
            if word == "DISK" and following.startswith("("):
                raise ClickHouseError(
                    DATABASE_ACCESS_DENIED,
                    "Custom disks (disk(type = ...)) are not allowed in the embedded ClickHouse: "
                    "they open folders and hosts the query chooses; use the server's disks",
                )
            if word == "CLICKHOUSE" and following.startswith("(") and not self.allow_network:
                inner = following[1 : following.find(")")] if ")" in following else following
                keys = {w for _, _, w in sqltext.tokens(inner)}
                if keys & {"HOST", "PORT"}:
                    raise ClickHouseError(
                        UNACCEPTABLE_URL,
                        "A CLICKHOUSE dictionary source with a HOST or PORT reaches a server "
                        "over the network, which the embedded ClickHouse refuses unless its "
                        "admin allows it (LOCAL_CLICKHOUSE_ALLOW_NETWORK=1); leave both out "
                        "to read this server's own tables",
                    )
            previous = word

    @staticmethod
    def _children(nodes: list[_Node], idx: int) -> list[_Node]:
        depth = nodes[idx].depth
        out = []
        for node in nodes[idx + 1 :]:
            if node.depth <= depth:
                break
            out.append(node)
        return out

    @staticmethod
    def _ancestors(nodes: list[_Node], idx: int) -> list[int]:
        out = []
        depth = nodes[idx].depth
        for j in range(idx - 1, -1, -1):
            if nodes[j].depth < depth:
                out.append(j)
                depth = nodes[j].depth
        return out

    def _check_path_args(self, function: str, args: list[_Node], storage: bool) -> None:
        for node in args:
            text = node.text
            if text.startswith("ExpressionList") or text.startswith("pair"):
                continue
            lit = _LITERAL.match(text)
            if lit:
                value = _unquote(lit.group(1))
                if value is None or not self.path_allowed(value):
                    raise self._deny_path(function, value if value is not None else text)
                continue
            if text.startswith("Literal "):
                continue  # a number (a TTL, a flag)
            ident = _IDENT.match(text)
            if ident and storage:
                # an engine's argument: an identifier stands for its own name as a string
                if not self.path_allowed(ident.group(1)):
                    raise self._deny_path(function, ident.group(1))
                continue
            raise ClickHouseError(
                DATABASE_ACCESS_DENIED,
                f"The arguments of {function}() must be string literals in the embedded "
                f"ClickHouse (its paths are checked to stay inside `{self.user_files}`); "
                f"got {text.split(' (')[0]}",
            )

    def _check_source_strings(self, source: str, args: list[_Node]) -> None:
        """A dictionary source's strings may be SQL the engine runs itself (the
        CLICKHOUSE source's ``query``, ``where``, ``invalidate_query``) and never parsed
        here: one that could name a guarded function is refused."""
        for node in args:
            lit = _LITERAL.match(node.text)
            value = _unquote(lit.group(1)) if lit else None
            triggers = _FILE_TRIGGERS if self.allow_network else _TRIGGERS
            if value is not None and (
                any(t in value.lower() for t in triggers) or _PATH_SLASH.search(value.encode())
            ):
                raise ClickHouseError(
                    DATABASE_ACCESS_DENIED,
                    f"Dictionary source {source.upper()}: a string that could name a file or "
                    "URL function is not allowed in the embedded ClickHouse",
                )

    def _check_url(self, function: str, args: list[_Node]) -> None:
        first = next((n for n in args if not n.text.startswith("ExpressionList")), None)
        lit = _LITERAL.match(first.text) if first else None
        value = _unquote(lit.group(1)) if lit else None
        if value is None:
            raise ClickHouseError(
                DATABASE_ACCESS_DENIED,
                f"The URL of {function}() must be a string literal in the embedded ClickHouse",
            )
        if not re.match(r"^\s*https?://", value, re.I):
            raise ClickHouseError(
                DATABASE_ACCESS_DENIED,
                f"{function}() takes http:// and https:// URLs only (got {value!r}); "
                "read local files with file() inside the user files folder",
            )

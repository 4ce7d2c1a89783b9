"""What a query may touch, decided on the engine's own parse of it.

chDB runs as ``clickhouse-local``, which skips the server's ``user_files_path`` check:
``file('/etc/passwd')``, a ``File`` engine table, ``INTO OUTFILE`` and the like reach
any path the process can. A real server refuses ``INTO OUTFILE`` over HTTP and
confines ``file()`` and its kin to ``user_files_path``; this module does the same.

The query is never judged by its text: the engine parses it (``EXPLAIN AST``, with
the request's query parameters substituted) and the tree it prints is walked. Escaped
identifiers (`` `fi\\x6ce` ``), comments, case, heredocs and parameters are therefore
resolved the way the engine resolves them. Running the parse costs about 0.4 ms, so it
runs only when the text could name something guarded: every guarded name and keyword
has to appear in the text literally (case aside), unless an escape spells it, so
a query without any of them, and without a backslash, cannot be one.

The rules, for every user including the admin:

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
- read-only users and GET requests may not ``KILL`` or run ``SYSTEM`` statements;
- nothing reaches other hosts (``url``, ``s3``, ``remote``, ``mysql``... as table
  functions, engines or dictionary sources, UNACCEPTABLE_URL) unless the admin
  allows network access when starting the server (``LOCAL_CLICKHOUSE_ALLOW_NETWORK``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import sqltext
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
    }
)
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
    "delta",
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
)
_TRIGGERS = _FILE_TRIGGERS + _NETWORK_TRIGGERS

_LINE = re.compile(r"^( *)(\S.*?)\s*$")
_NODE = re.compile(r"^(Function|FunctionWithKeyValueArguments)\s+(\S+)")
_LITERAL = re.compile(r"^Literal '(.*)'$")
_IDENT = re.compile(r"^Identifier (.*)$")
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


def _escaped(value: str) -> str:
    """A query parameter's value is read in the escaped (TSV) form."""
    return (
        value.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


class Guard:
    def __init__(self, user_files: str, allow_network: bool = False) -> None:
        self.user_files = os.path.normpath(user_files)
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

    def _deny_path(self, function: str, path: str) -> ClickHouseError:
        return ClickHouseError(
            DATABASE_ACCESS_DENIED,
            f"File `{path}` is not inside `{self.user_files}` (the user files folder; "
            f"{function} reads and writes only there)",
        )

    # -- the check ----------------------------------------------------------------------

    @staticmethod
    def needs_parse(query: bytes) -> bool:
        lowered = query.lower()
        return any(t.encode() in lowered for t in _TRIGGERS)

    @staticmethod
    def could_name_file(query: bytes) -> bool:
        """Whether the text could name a file function (the network ones are table
        functions and engines, which INSERT ... VALUES data cannot call)."""
        lowered = query.lower()
        return any(t.encode() in lowered for t in _FILE_TRIGGERS)

    def check(
        self,
        raw: Any,
        query: bytes,
        params: Mapping[str, str],
        query_class: int,
        restricted: bool,
        user: str,
        force: bool = False,
    ) -> Parsed | None:
        """Raise if ``query`` may not run. ``restricted``: a read-only user or a GET.

        ``query_class`` is chDB's classification (3 = control statements: SET, USE,
        KILL, SYSTEM, DDL...); only those (when restricted) and texts that could name a
        guarded function (or all, with ``force``) are parsed. Returns what the parse
        says, None when not parsed.
        """
        lowered = query.lower()
        if any(w in lowered for w in (b"outfile", b"infile", b"attach")):
            self._check_files_clauses(raw, query)
        control = query_class == 3
        if not (force or self.needs_parse(query) or (restricted and control)):
            return None
        tree = raw.query(b"EXPLAIN AST " + query, "TSVRaw", params=dict(params)).bytes()
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
        )
        if restricted and (root.startswith("KillQueryQuery") or root.startswith("SYSTEM")):
            raise ClickHouseError(
                ACCESS_DENIED if root.startswith("Kill") else READONLY,
                f"{user}: Cannot execute query in readonly mode: "
                f"{'KILL' if root.startswith('Kill') else 'SYSTEM'} statements need a user "
                "that is not read-only, over POST",
            )
        in_udf = root.startswith("CreateSQLFunctionQuery")
        for idx, node in enumerate(nodes):
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

    def _check_files_clauses(self, raw: Any, query: bytes) -> None:
        """INTO OUTFILE, FROM INFILE and ATTACH ... FROM 'path', found in the engine's
        own formatting of the query (no comments; literals always single-quoted with
        backslash escapes, which sqltext's lexer reads exactly)."""
        text = bytes(
            raw.query(
                "SELECT formatQuerySingleLine({q:String})",
                "TSVRaw",
                params={"q": _escaped(query.decode("utf-8", "replace"))},
            ).bytes()
        ).decode("utf-8", "replace")
        words = list(sqltext.tokens(text))
        previous = ""
        for _, end, word in words:
            if (previous, word) in (("INTO", "OUTFILE"), ("FROM", "INFILE")):
                raise ClickHouseError(
                    INTO_OUTFILE_NOT_ALLOWED,
                    f"{previous} {word} is not allowed over HTTP: the embedded ClickHouse "
                    "reads and writes files only through file() inside the user files folder",
                )
            attach = words[0][2] == "ATTACH"
            if attach and word == "FROM" and text[end:].lstrip().startswith("'"):
                raise ClickHouseError(
                    DATABASE_ACCESS_DENIED,
                    "ATTACH ... FROM a path is not allowed in the embedded ClickHouse",
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
            if value is not None and any(t in value.lower() for t in triggers):
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

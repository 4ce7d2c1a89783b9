"""ClickHouse's HTTP interface, served by Starlette/uvicorn over the chDB engine.

What a request goes through, in the order a real server does it:

1. authentication (basic auth, ``X-ClickHouse-User``/``-Key`` headers, or
   ``user``/``password`` parameters) against :mod:`.users`;
2. parameters: reserved names (``query``, ``database``, ``default_format``,
   ``session_id``...), ``param_<name>`` query parameters, and every other name as a
   ClickHouse setting, applied with ``SET name = 'value'`` so the engine converts the
   string by its own rules and refuses unknown settings (UNKNOWN_SETTING);
3. the query: the ``query`` parameter, the body, or both (the body continues the
   query, which is how ``INSERT ... FORMAT X`` receives its data); a compressed body is
   decoded as it streams in;
4. execution on a fresh engine connection, or on the session's connection; INSERT data
   is streamed into the engine, SELECT results are streamed out (row formats) or
   built whole (document formats such as JSON whose header and footer need every row);
5. the reply: ClickHouse's headers and, on error, its status codes and
   ``Code: N. DB::Exception: ...`` body. An error after the body started is written
   in-band inside the ``__exception__`` block named by ``X-ClickHouse-Exception-Tag``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import socket
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.formparsers import MultiPartParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import codecs, sqltext
from .engine import Connection, Engine, Session, Sessions
from .errors import (
    AUTHENTICATION_FAILED,
    BAD_ARGUMENTS,
    QUERY_IS_TOO_LARGE,
    READONLY,
    SOCKET_TIMEOUT,
    SYNTAX_ERROR,
    TOO_LARGE_SIZE_COMPRESSED,
    ClickHouseError,
)
from .guard import Guard
from .users import User, Users

T = TypeVar("T")

# URL parameters that are not settings (HTTPHandler's reserved names).
RESERVED = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "close_session",
    "user",
    "password",
    "quota_key",
    "stacktrace",
    "with_stacktrace",
    "role",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "http_native_compression_disable_checksumming_on_decompress",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_QUERY_BYTES = 64 * 1024 * 1024  # for non-INSERT bodies, which are read whole
# Decoded bytes a compressed request body may expand to (LOCAL_CLICKHOUSE_MAX_DECOMPRESSED).
MAX_DECOMPRESSED_BYTES = 1 << 30
_INSERT_CHUNK = 1 << 20
MAX_HEADER_VALUE = 128 * 1024
_HEAD_BYTES = 64 * 1024

# Formats whose output can be sent block by block. Everything else (JSON, XML, Pretty,
# Parquet, Arrow files and streams, ORC...) has a header, footer or framing that needs
# the whole result, and is built whole.
_STREAMABLE = re.compile(
    r"^((TabSeparated|TSV|CSV|JSONCompactEachRow|JSONCompactStringsEachRow)"
    r"(WithNames|WithNamesAndTypes)?|TabSeparatedRaw|TSVRaw|JSONEachRow|JSONLines|NDJSON|"
    r"JSONStringsEachRow|Native|RowBinary|Values|LineAsString|Raw|Null)$",
    re.I,
)


def header_lines(fmt: str) -> int:
    """Lines of header that chDB repeats at the start of every streamed chunk."""
    if fmt.lower().endswith("withnamesandtypes"):
        return 2
    return 1 if fmt.lower().endswith("withnames") else 0


def strip_lines(data: bytes, count: int) -> bytes:
    pos = 0
    for _ in range(count):
        pos = data.index(b"\n", pos) + 1
    return data[pos:]


_CONTENT_TYPES = [
    (re.compile(r"^(TabSeparated|TSV)", re.I), "text/tab-separated-values; charset=UTF-8"),
    (re.compile(r"^CSV", re.I), "text/csv; charset=UTF-8; header=absent"),
    (
        re.compile(r"^(JSON\w*EachRow\w*|JSONLines|NDJSON)$", re.I),
        "application/x-ndjson; charset=UTF-8",
    ),
    (re.compile(r"^JSON", re.I), "application/json; charset=UTF-8"),
    (re.compile(r"^XML$", re.I), "application/xml; charset=UTF-8"),
    (
        re.compile(r"^(Native|RowBinary\w*|Parquet|Arrow\w*|ORC|Avro|MsgPack|Protobuf\w*)$", re.I),
        "application/octet-stream",
    ),
]


def content_type(fmt: str) -> str:
    for pattern, ctype in _CONTENT_TYPES:
        if pattern.search(fmt):
            return ctype
    return "text/plain; charset=UTF-8"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def run(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


@dataclass
class Summary:
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0

    def add(self, result: Any) -> None:
        self.read_rows += int(result.rows_read())
        self.read_bytes += int(result.bytes_read())
        self.written_rows += int(result.rows_written())
        self.written_bytes += int(result.bytes_written())
        self.elapsed_ns += int(float(result.elapsed()) * 1e9)

    def header(self) -> str:
        return json.dumps(
            {
                "read_rows": str(self.read_rows),
                "read_bytes": str(self.read_bytes),
                "written_rows": str(self.written_rows),
                "written_bytes": str(self.written_bytes),
                "total_rows_to_read": "0",
                "result_rows": str(self.result_rows),
                "result_bytes": str(self.result_bytes),
                "elapsed_ns": str(self.elapsed_ns),
            },
            separators=(",", ":"),
        )


@dataclass
class Call:
    """Everything the request says, parsed once."""

    query_id: str
    user: User
    params: dict[str, str]
    settings: dict[str, str]
    query_params: dict[str, str]
    external: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    readonly_method: bool = False
    form_body: bool = False  # the body was a form, already read: the query is in its fields
    query_bytes: bytes = b""  # the query parameter's bytes as sent (percent-decoded)
    session: Session | None = None  # the HTTP session the request runs in, once opened

    @property
    def format(self) -> str:
        return self.params.get("default_format") or "TabSeparated"


class Server:
    def __init__(
        self,
        engine: Engine,
        users: Users,
        max_decompressed: int = MAX_DECOMPRESSED_BYTES,
        receive_timeout: float = 30.0,
        allow_network: bool = False,
    ) -> None:
        self.max_decompressed = max_decompressed
        self.receive_timeout = receive_timeout
        self.engine = engine
        self.users = users
        self.sessions = Sessions(engine)
        self.guard = Guard(str(engine.user_files), allow_network)
        self.hostname = engine.info.display_name or socket.gethostname()

    # -- the Starlette app -------------------------------------------------------------

    def app(self) -> Any:
        """The ASGI app: Starlette's routes, behind the body receive timeout."""
        inner = self._starlette()
        timeout = self.receive_timeout

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            if any(len(value) > MAX_HEADER_VALUE for _, value in scope["headers"]):
                # ClickHouse's http_max_field_value_size
                response = PlainTextResponse(
                    f"A header value is longer than {MAX_HEADER_VALUE} bytes\n",
                    status_code=431,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
            body_done = False

            async def timed_receive() -> Any:
                # A stalled body fails after the receive timeout (SOCKET_TIMEOUT), and the
                # request's engine connection is released. Once the body is complete,
                # receive only waits for a disconnect and is left alone.
                nonlocal body_done
                if body_done:
                    return await receive()
                with anyio.move_on_after(timeout):
                    message = await receive()
                    body_done = not message.get("more_body", False)
                    return message
                raise ClickHouseError(
                    SOCKET_TIMEOUT,
                    f"Timeout exceeded while reading from socket ({timeout:g} s, "
                    "LOCAL_CLICKHOUSE_RECEIVE_TIMEOUT): the request body stalled",
                )

            await inner(scope, timed_receive, send)

        return app

    def _starlette(self) -> Starlette:
        routes = [
            Route("/ping", self.ping, methods=["GET", "HEAD"]),
            Route("/replicas_status", self.ping, methods=["GET", "HEAD"]),
            Route("/", self.query, methods=["GET", "POST", "HEAD"]),
            Route("/query", self.query, methods=["GET", "POST"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    def _lifespan(self, app: Starlette) -> Any:
        server = self

        class _Lifespan:
            async def __aenter__(self) -> None:
                self._scope = anyio.CancelScope()

                async def sweep() -> None:
                    with self._scope:
                        while True:
                            await anyio.sleep(1.0)
                            await run(server.sessions.expire)

                self._tg = anyio.create_task_group()
                await self._tg.__aenter__()
                self._tg.start_soon(sweep)

            async def __aexit__(self, *exc: Any) -> None:
                self._scope.cancel()
                await self._tg.__aexit__(None, None, None)
                await run(server.sessions.close_all)

        return _Lifespan()

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("Ok.\n")

    # -- the query handler ---------------------------------------------------------------

    def _base_headers(
        self, query_id: str, fmt: str | None = None, call: Call | None = None
    ) -> dict[str, str]:
        # the session_timezone a request sets in its URL, or its session SET, is the
        # time zone it reads in
        timezone = ""
        if call:
            timezone = call.settings.get("session_timezone") or ""
            timezone = timezone or (call.session.timezone if call.session else "")
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": timezone or self.engine.info.timezone,
            "X-ClickHouse-Server-Display-Name": self.hostname,
            "Keep-Alive": "timeout=10",
        }
        if fmt:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = content_type(fmt)
        return headers

    def error_response(self, err: ClickHouseError, query_id: str) -> Response:
        headers = self._base_headers(query_id)
        headers["X-ClickHouse-Exception-Code"] = str(err.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        body = f"{err.text()} (version {self.engine.info.version})\n"
        return Response(body, status_code=err.status, headers=headers)

    async def query(self, request: Request) -> Response:
        query_id = request.query_params.get("query_id") or str(uuid.uuid4())
        try:
            call = await self._parse(request, query_id)
            return await self._execute(request, call)
        except ClickHouseError as err:
            return self.error_response(err, query_id)
        except Exception as exc:  # noqa: BLE001 - every failure is an HTTP error reply
            return self.error_response(ClickHouseError.from_engine(exc), query_id)

    async def _parse(self, request: Request, query_id: str) -> Call:
        params: dict[str, str] = dict(request.query_params)
        external: list[tuple[str, str, str, bytes]] = []
        ctype = request.headers.get("content-type", "")
        form_body = request.method == "POST" and ctype.startswith("multipart/form-data")
        if form_body:
            if request.headers.get("content-encoding"):
                # a compressed form: parse it from the decoded body (bounded as any body)
                parser = MultiPartParser(
                    request.headers,
                    _decoded_body(request, self.max_decompressed),
                    max_part_size=MAX_QUERY_BYTES,
                )
                form = await parser.parse()
            else:
                form = await request.form(max_part_size=MAX_QUERY_BYTES)
            files: dict[str, bytes] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    params[key] = value
                else:
                    files[key] = await value.read()
            for name, data in files.items():
                structure = params.pop(f"{name}_structure", None)
                types = params.pop(f"{name}_types", None)
                fmt = params.pop(f"{name}_format", None) or "TabSeparated"
                if structure is None and types is not None:
                    structure = ", ".join(
                        f"_{i + 1} {t.strip()}" for i, t in enumerate(types.split(","))
                    )
                if structure is None:
                    raise ClickHouseError(
                        BAD_ARGUMENTS,
                        f"Neither structure nor types have not been provided for external "
                        f"table {name}. Use fields {name}_structure or {name}_types to do so.",
                    )
                external.append((name, structure, fmt, data))
        user_name, password = self._credentials(request, params)
        user = self.users.authenticate(user_name, password)
        settings: dict[str, str] = {}
        query_params: dict[str, str] = {}
        for key, value in params.items():
            if key.startswith("param_"):
                query_params[key[len("param_") :]] = value
            elif key not in RESERVED:
                if not _SETTING_NAME.match(key):
                    raise ClickHouseError(BAD_ARGUMENTS, f"Invalid setting name: {key!r}")
                settings[key] = value
        if "query_id" in params and "log_comment" not in settings and not user.readonly:
            # chDB assigns its own query ids; the one the client chose is kept as the
            # log_comment of its system.query_log rows, so it can still be looked up.
            # (Not for read-only users: readonly=1 forbids changing any setting.)
            settings["log_comment"] = query_id
        return Call(
            query_id=query_id,
            user=user,
            params=params,
            settings=settings,
            query_params=query_params,
            external=external,
            form_body=form_body,
            readonly_method=request.method in ("GET", "HEAD"),
            query_bytes=_raw_query_param(request.scope.get("query_string", b""))
            if "query" in request.query_params
            else params.get("query", "").encode(),
        )

    @staticmethod
    def _credentials(request: Request, params: dict[str, str]) -> tuple[str | None, str | None]:
        """As ClickHouse's HTTPHandler: X-ClickHouse-User/-Key headers, or an
        Authorization header (Basic only), or user/password parameters; mixing two of
        them, another scheme or a malformed header is AUTHENTICATION_FAILED."""
        header_user = request.headers.get("x-clickhouse-user", "")
        header_key = request.headers.get("x-clickhouse-key", "")
        auth = request.headers.get("authorization")
        in_params = any(k in params for k in ("user", "password", "quota_key"))
        if header_user or header_key:
            if auth is not None:
                raise _invalid_auth("X-ClickHouse HTTP headers and the Authorization header")
            if in_params:
                raise _invalid_auth("X-ClickHouse HTTP headers and authentication via parameters")
            return header_user or "default", header_key
        if auth is not None:
            if in_params:
                raise _invalid_auth("Authorization HTTP header and authentication via parameters")
            scheme, _, info = auth.strip().partition(" ")
            if scheme.lower() != "basic":
                raise ClickHouseError(
                    AUTHENTICATION_FAILED,
                    f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not "
                    "supported",
                )
            try:
                if not info.strip():
                    raise ValueError("no credentials")
                decoded = base64.b64decode(info.strip(), validate=True).decode()
            except ValueError:
                raise ClickHouseError(
                    AUTHENTICATION_FAILED,
                    "Invalid authentication: the Basic credentials are not valid base64 of "
                    "UTF-8 'user:password'",
                ) from None
            user, _, password = decoded.partition(":")
            return user or "default", password
        return params.get("user") or "default", params.get("password", "")

    # -- connections ------------------------------------------------------------------------

    # -- connections ------------------------------------------------------------------------

    def _open(self, call: Call) -> tuple[Connection, Callable[[], None]]:
        """The engine connection for this request and the function that releases it.

        Runs on a worker thread, like everything that touches the engine; a request
        makes as few thread hops as it can, since each costs about 0.15 ms.
        """
        session_id = call.params.get("session_id")
        if not self._uses_session(call):
            # A fresh connection starts with logging off only when the server has its
            # own statements to run first (see Engine.connect).
            database = call.params.get("database")
            quiet = bool(call.settings or database or call.external or call.readonly_method)
            level = 0 if _elevated(call) else call.user.readonly
            conn = self.engine.connect(level, quiet or _elevated(call))
            return conn, conn.close
        assert session_id
        session = self.sessions.acquire(
            session_id,
            call.user.name,
            call.user.readonly,
            call.params.get("session_timeout"),
            call.params.get("session_check") in ("1", "true"),
        )
        try:
            restore = self._session_snapshot(session.conn, call)
        except BaseException:
            self.sessions.release(session)
            raise
        call.session = session
        close = call.params.get("close_session") in ("1", "true")

        def release() -> None:
            try:
                restore()
            finally:
                self.sessions.release(session, close=close)

        return session.conn, release

    @staticmethod
    def _session_snapshot(conn: Connection, call: Call) -> Callable[[], None]:
        """Settings and database given in the URL hold for this request only, as on a
        real server; what the session itself SETs or USEs stays."""
        names = sorted(call.settings)
        before: dict[str, str] = {}
        if names:
            listed = ", ".join(quote(n) for n in names)
            rows = conn.raw.query(
                f"SELECT name, value FROM system.settings WHERE name IN ({listed})",
                "JSONCompactEachRow",
            ).bytes()
            before = dict(json.loads(line) for line in rows.splitlines() if line)
        database = None
        if call.params.get("database"):
            database = conn.raw.query("SELECT currentDatabase()", "TSV").bytes().decode().strip()

        def restore() -> None:
            if before and not call.user.readonly:
                try:
                    conn.raw.query(f"SET {_assignments(before)}", "TSV")
                except Exception:  # noqa: BLE001 - a setting the session cannot reset
                    pass
            if database:
                conn.raw.query(f"USE {_ident(database)}", "TSV")

        return restore

    def _connect_and_prepare(self, call: Call) -> tuple[Connection, Callable[[], None]]:
        conn, release = self._open(call)
        try:
            self._prepare(conn, call, self._uses_session(call))
        except BaseException:
            self._drop_external(conn, call)
            release()
            raise

        finished = False

        def finish() -> None:
            # once only: an error while fetching both closes the fetcher (which
            # finishes) and unwinds through the caller's own finish
            nonlocal finished
            if finished:
                return
            finished = True
            self._drop_external(conn, call)
            release()

        return conn, finish

    @staticmethod
    def _uses_session(call: Call) -> bool:
        """Whether the request runs on its session's connection. A read-only user's
        external tables need a connection that can create them (see _elevated); its
        session holds nothing else (it can neither SET nor create tables)."""
        return bool(call.params.get("session_id")) and not _elevated(call)

    @staticmethod
    def _prepare(conn: Connection, call: Call, in_session: bool) -> None:
        elevated = _elevated(call)
        if elevated and call.user.readonly == 1 and call.settings:
            name = next(iter(call.settings))
            raise ClickHouseError(
                READONLY, f"Cannot modify '{name}' setting in readonly mode", "READONLY"
            )
        database = call.params.get("database")
        if database:
            conn.raw.query(f"USE {_ident(database)}", "TSV")
        settings = dict(call.settings)
        if call.external:
            # External data is read with the request's settings (input_format_allow_errors_num
            # and the like), as on a server; readonly comes last, once the tables exist.
            early = {k: v for k, v in settings.items() if k != "readonly"}
            if early:
                conn.raw.query(f"SET {_assignments(early)}", "TSV")
                settings = {k: v for k, v in settings.items() if k not in early}
        for name, structure, fmt, data in call.external:
            # The structure is a query parameter the engine parses as a column list
            # (name type pairs) and nothing else: never pasted into the DDL's text.
            conn.raw.query(
                f"CREATE TEMPORARY TABLE {_ident(name)} ENGINE = Memory "
                "AS SELECT * FROM null({structure:String})",
                "TSV",
                params={"structure": structure},
            )
            if data:
                inserter = conn.raw.send_insert(f"INSERT INTO {_ident(name)}", fmt)
                try:
                    conn.raw.insert_append(inserter, data)
                    conn.raw.insert_done(inserter)
                except BaseException:
                    # a session's connection must not stay inside a failed insert
                    _cancel_insert(conn.raw, inserter)
                    raise
        if call.readonly_method and not in_session and not call.user.readonly:
            # GET is read-only by the engine's decision: once the URL's settings are
            # applied the connection turns readonly=1, and the engine refuses writes,
            # DDL, DETACH/ATTACH, INSERT INTO FUNCTION and further setting changes.
            # (A real server uses readonly=2; chDB's readonly=2 lets INSERT INTO
            # FUNCTION through.)
            settings.pop("readonly", None)
            settings["readonly"] = "1"
        if elevated:
            # a read-only user's external tables are made: back to its own level
            settings.pop("readonly", None)
            settings["readonly"] = str(call.user.readonly)
        quiet = (
            not in_session
            and (elevated or not call.user.readonly)
            and (settings or database or call.external)
        )
        if quiet:
            settings.setdefault("log_queries", "1")
        if settings:
            conn.raw.query(f"SET {_assignments(settings)}", "TSV")

    @staticmethod
    def _drop_external(conn: Connection, call: Call) -> None:
        for name, *_ in call.external:
            try:
                conn.raw.query(f"DROP TEMPORARY TABLE IF EXISTS {_ident(name)}", "TSV")
            except Exception:  # noqa: BLE001
                pass

    # -- execution --------------------------------------------------------------------------

    async def _execute(self, request: Request, call: Call) -> Response:
        body = _decoded_body(request, self.max_decompressed) if not call.form_body else _empty()
        query_param = call.query_bytes
        head = bytearray()
        body_done = False
        async for chunk in body:
            head += chunk
            if len(head) >= _HEAD_BYTES:
                break
        else:
            body_done = True
        text = query_param + (b"\n" if query_param and head else b"") + bytes(head)
        split = sqltext.split_insert(text.decode("latin-1"))
        if split is not None:
            return await self._insert(call, split, text, body, body_done)
        if not body_done:
            rest = bytearray(text)
            async for chunk in body:
                rest += chunk
                if len(rest) > MAX_QUERY_BYTES:
                    raise ClickHouseError(
                        QUERY_IS_TOO_LARGE,
                        f"Query is too large ({len(rest)}). max_query_size = {MAX_QUERY_BYTES}",
                    )
            text = bytes(rest)
        # The engine gets the bytes as sent: invalid UTF-8 in a literal is stored as is,
        # the way INSERT data is (never rewritten to U+FFFD), and the whitespace around
        # the statement stays, as a server keeps it in system.query_log's text.
        query = text if text.strip() else b""
        if not query:
            raise ClickHouseError(SYNTAX_ERROR, "Empty query")
        compression = None
        if call.settings.get("enable_http_compression", "0").lower() in ("1", "true"):
            compression = codecs.choose_encoding(request.headers.get("accept-encoding"))
        started = await run(self._start_query, call, query)
        return self._reply(call, started, compression)

    async def _insert(
        self,
        call: Call,
        split: sqltext.InsertSplit,
        text: bytes,
        body: AsyncIterator[bytes],
        body_done: bool,
    ) -> Response:
        if call.readonly_method:
            raise self._get_is_readonly(call)
        if split.format.lower() == "values" and not call.user.readonly:
            # streamed Values data is never parsed by the guard: literals only (URL
            # settings hold for this request only, in a session too)
            for name in _VALUES_EXPRESSIONS:
                call.settings[name] = "0"
        statement = split.statement.encode("latin-1")

        values = split.format.lower() == "values"

        def begin() -> tuple[Connection, Callable[[], None], Any]:
            conn, finish = self._connect_and_prepare(call)
            try:
                parsed = self.guard.check(
                    conn.raw,
                    statement + f" FORMAT {split.format}".encode(),
                    call.query_params,
                    0,
                    bool(call.user.readonly),
                    call.user.name,
                    force=values,
                )
                if values and parsed and parsed.insert_settings:
                    raise _values_settings_refused()
                return conn, finish, conn.raw.send_insert(statement, split.format)
            except BaseException:
                finish()
                raise

        conn, finish, inserter = await run(begin)
        raw = conn.raw
        try:
            pending = bytearray(text[split.data_offset :])
            if not body_done:
                async for chunk in body:
                    pending += chunk
                    if len(pending) >= _INSERT_CHUNK:
                        await run(raw.insert_append, inserter, bytes(pending))
                        pending.clear()

            def done() -> Any:
                if pending:
                    raw.insert_append(inserter, bytes(pending))
                return raw.insert_done(inserter)

            result = await run(done)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run(_cancel_insert, raw, inserter)
                await run(finish)
            raise
        await run(finish)
        summary = Summary()
        if result is not None:
            summary.add(result)
        headers = self._base_headers(call.query_id, call=call)
        headers["X-ClickHouse-Summary"] = summary.header()
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        return Response(b"", headers=headers)

    def _get_is_readonly(self, call: Call) -> ClickHouseError:
        return ClickHouseError(
            READONLY,
            f"{call.user.name}: Cannot execute query in readonly mode. For queries over HTTP, "
            "method GET implies readonly. You should use method POST for modifying queries",
        )

    def _start_query(self, call: Call, query: bytes) -> Started:
        """Everything up to the first result chunks, in one thread hop."""
        conn, finish = self._connect_and_prepare(call)
        try:
            return self._run_query(conn, finish, call, query)
        except BaseException:
            finish()
            raise

    def _run_query(
        self, conn: Connection, finish: Callable[[], None], call: Call, query: bytes
    ) -> Started:
        raw = conn.raw
        kind = raw.classify_query(query)
        query_class = int(kind["query_class"])
        if kind["statement_count"] != 1:
            raise ClickHouseError(
                SYNTAX_ERROR,
                "Syntax error (Multi-statements are not allowed): send one statement per request",
            )
        restricted = bool(call.user.readonly) or call.readonly_method
        parsed = self.guard.check(
            raw, query, call.query_params, query_class, restricted, call.user.name
        )
        root = parsed.root if parsed else None
        # A session's connection keeps its user's level, so a GET in a writable user's
        # session is judged here: reading statements, SET and USE only.
        writable_session_get = (
            call.readonly_method and call.params.get("session_id") and not call.user.readonly
        )
        if writable_session_get and (
            query_class == 1
            or (query_class == 3 and not (root or "").startswith(("Set", "UseQuery")))
        ):
            raise self._get_is_readonly(call)
        fmt = sqltext.output_format(query.decode("utf-8", "replace")) or call.format
        streamable = (
            query_class == 0 and kind["statement_count"] == 1 and bool(_STREAMABLE.match(fmt))
        )
        summary = Summary()
        stream = None
        if streamable:
            try:
                stream = raw.send_query(query, fmt, params=call.query_params)
            except Exception as exc:  # noqa: BLE001
                # chDB streams SELECTs but refuses EXISTS, SHOW CREATE and a few others.
                if "Streaming query is not supported" not in str(exc):
                    raise
        if stream is None:
            # INSERT ... VALUES data is not in the parse the guard checked, and the
            # engine evaluates expressions in it (file('/etc/passwd') included): when its
            # text could name a guarded function, the values are read as literals only.
            literal_values = (
                parsed is not None
                and self.guard.could_name_file(query)
                and parsed.root.startswith("InsertQuery")
                and not parsed.insert_select
                and not call.user.readonly
            )
            if literal_values and parsed and parsed.insert_settings:
                raise _values_settings_refused()
            restore = _literal_values_only(raw) if literal_values else None
            try:
                result = raw.query(query, fmt, params=call.query_params)
            except Exception as exc:  # noqa: BLE001 - re-raised, explained if it can be
                result = _show_create_system_table(raw, exc, query, fmt)
                if result is None:
                    raise _access_management_hint(exc, query) from exc
            finally:
                if restore:
                    raw.query(restore, "TSV")
            summary.add(result)
            if call.session and query_class == 3 and b"session_timezone" in query.lower():
                # a SET of the session's time zone: its replies say it from now on
                tz = raw.query("SELECT getSetting('session_timezone')", "TSVRaw").bytes()
                call.session.timezone = bytes(tz).decode().strip()
            finish()
            # A statement that makes no result set (DDL, INSERT, SET, SYSTEM...) is
            # answered without X-ClickHouse-Format, which tells clients (clickhouse-connect's
            # command) that there is no result to read, only the summary.
            result_set = query_class == 0 or _first_word(query) == "KILL"
            return Started(fmt if result_set else None, summary, [bytes(result.bytes())], None)
        fetcher = _Fetcher(raw, stream, summary, header_lines(fmt), finish)
        # wait_end_of_query: the whole result before the answer starts (an error is then
        # the answer's status). It is still fetched as a stream: chDB's one-piece query()
        # logs the text without its leading whitespace, which a server keeps.
        whole = call.params.get("wait_end_of_query") in ("1", "true")
        try:
            chunks: list[bytes] = []
            while (chunk := fetcher.fetch()) is not None:
                chunks.append(chunk)
                if len(chunks) == 2 and not whole:
                    break
        except BaseException:
            fetcher.close()
            raise
        if len(chunks) < 2 or whole:
            fetcher.close()
            return Started(fmt, summary, chunks, None)
        return Started(fmt, summary, chunks, fetcher)

    def _reply(self, call: Call, started: Started, compression: str | None) -> Response:
        headers = self._base_headers(call.query_id, started.format, call)
        if started.format is None:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        summary = started.summary
        summary.result_bytes = sum(len(c) for c in started.chunks)
        headers["X-ClickHouse-Summary"] = summary.header()
        level = int(call.settings.get("http_zlib_compression_level", "3") or 3)
        fetcher = started.fetcher
        if fetcher is None:
            data = b"".join(started.chunks)
            if compression and data:
                enc = codecs.encoder(compression, level)
                data = enc.feed(data) + enc.finish()
                headers["Content-Encoding"] = compression
            return Response(data, headers=headers)
        if compression:
            headers["Content-Encoding"] = compression
        tag = secrets.token_hex(8)
        headers["X-ClickHouse-Exception-Tag"] = tag
        version = self.engine.info.version

        async def chunks() -> AsyncIterator[bytes]:
            enc = codecs.encoder(compression, level) if compression else None
            try:
                for data in started.chunks:
                    yield enc.feed(data) if enc else data
                while (data := await run(fetcher.fetch)) is not None:  # type: ignore[arg-type]
                    yield enc.feed(data) if enc else data
            except Exception as exc:  # noqa: BLE001 - in-band error after the body started
                err = ClickHouseError.from_engine(exc)
                message = f"{err.text()} (version {version})\n"
                block = (
                    f"__exception__\r\n{tag}\r\n{message}"
                    f"{len(message.encode())} {tag}\r\n__exception__\r\n"
                ).encode()
                yield enc.feed(block) if enc else block
            finally:
                with anyio.CancelScope(shield=True):
                    await run(fetcher.close)
            if enc:
                tail = enc.finish()
                if tail:
                    yield tail

        return StreamingResponse(chunks(), headers=headers, background=None)


@dataclass
class Started:
    """A query that has begun: its first chunks, and the fetcher for the rest (if any)."""

    format: str | None  # None: the statement made no result set
    summary: Summary
    chunks: list[bytes]
    fetcher: _Fetcher | None


class _Fetcher:
    """Pulls a streaming query's chunks; ``close`` cancels it and releases the connection."""

    def __init__(
        self, raw: Any, stream: Any, summary: Summary, header: int, finish: Callable[[], None]
    ) -> None:
        self._raw = raw
        self._stream = stream
        self._summary = summary
        self._header = header  # lines chDB repeats at the start of every chunk
        self._finish = finish
        self._seen = 0
        self._closed = False

    def fetch(self) -> bytes | None:
        result = self._raw.streaming_fetch_result(self._stream)
        if result is None:
            return None
        data = result.bytes()
        if result.rows_read() == 0 and not data:
            return None
        self._summary.add(result)
        self._seen += 1
        if self._seen > 1 and self._header:
            return strip_lines(bytes(data), self._header)
        return bytes(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._raw.streaming_cancel_query(self._stream)
        except Exception:  # noqa: BLE001 - already finished
            pass
        self._finish()


def _assignments(settings: dict[str, str]) -> str:
    return ", ".join(f"{k} = {quote(v)}" for k, v in settings.items())


def _cancel_insert(raw: Any, inserter: Any) -> None:
    try:
        raw.insert_cancel(inserter)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


_VALUES_EXPRESSIONS = (
    "input_format_values_interpret_expressions",
    "input_format_values_deduce_templates_of_expressions",
)


def _values_settings_refused() -> ClickHouseError:
    return ClickHouseError(
        BAD_ARGUMENTS,
        "An INSERT whose Values data may call functions cannot carry its own SETTINGS "
        "clause in the embedded ClickHouse (its expressions are read as literals only, "
        "see README: Security); pass the settings as URL parameters",
    )


def _literal_values_only(raw: Any) -> str:
    """Turn off expressions in Values data on this connection; the SET that restores it."""
    listed = ", ".join(quote(n) for n in _VALUES_EXPRESSIONS)
    rows = raw.query(
        f"SELECT name, value FROM system.settings WHERE name IN ({listed})", "JSONCompactEachRow"
    ).bytes()
    before = dict(json.loads(line) for line in bytes(rows).splitlines() if line)
    raw.query("SET " + ", ".join(f"{n} = 0" for n in _VALUES_EXPRESSIONS), "TSV")
    return "SET " + _assignments(before)


def _first_word(query: bytes) -> str:
    first = next(sqltext.tokens(query.decode("utf-8", "replace")), None)
    return first[2] if first else ""


_NO_SYSTEM_METADATA = re.compile(r"There is no metadata of table (\w+) in database (system)\b")
# SHOW CREATE of a system table, which chDB has no metadata for: the statement a server
# prints, built from system.tables and system.columns.
_SYSTEM_CREATE = r"""SELECT concat('CREATE TABLE ', database, '.', name, '\n(\n',
    (SELECT arrayStringConcat(groupArray(concat('    `', name, '` ', type)), ',\n')
     FROM (SELECT name, type FROM system.columns
           WHERE database = {db:String} AND table = {table:String} ORDER BY position)),
    '\n)\nENGINE = ', engine,
    if(comment = '', '',
       concat('\nCOMMENT \'', replaceAll(replaceAll(comment, '\\', '\\\\'), '\'', '\\\''), '\'')))
    AS statement
FROM system.tables WHERE database = {db:String} AND name = {table:String}"""


def _show_create_system_table(raw: Any, exc: Exception, query: bytes, fmt: str) -> Any:
    """The result of ``SHOW CREATE`` for a system table the engine has no metadata for,
    or None (then the engine's error stands, as for a table that does not exist)."""
    found = _NO_SYSTEM_METADATA.search(str(exc))
    if found is None or _first_word(query) != "SHOW":
        return None
    params = {"db": found[2], "table": found[1]}
    exists = (
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {table:String}"
    )
    if raw.query(exists, "TSV", params=params).bytes() != b"1\n":
        return None
    return raw.query(_SYSTEM_CREATE, fmt, params=params)


_ACCESS_OBJECTS = {"USER", "ROLE", "QUOTA", "ROW", "POLICY", "SETTINGS", "PROFILE"}


def _access_management_hint(exc: Exception, query: bytes) -> Exception:
    """SQL access management fails in chDB (no writable access storage): say what to
    use instead. Only the message changes; the engine's code stays."""
    err = ClickHouseError.from_engine(exc)
    words = [w for _, _, w in itertools.islice(sqltext.tokens(query.decode("utf-8", "replace")), 2)]
    access = bool(words) and (
        words[0] in ("GRANT", "REVOKE")
        or (words[0] in ("CREATE", "ALTER", "DROP") and words[1:2] and words[1] in _ACCESS_OBJECTS)
    )
    if not access or err.code == 62:
        return exc
    return ClickHouseError(
        err.code,
        f"{' '.join(words)}: SQL access management (users, roles, grants, quotas, row "
        "policies) is not available in the embedded ClickHouse, whose engine (chDB) has no "
        "writable access storage. Define users in its users file (--users or "
        "LOCAL_CLICKHOUSE_USERS; readonly = 1 for a read-only user), or use a real "
        f"clickhouse-server for roles and grants. The engine said: {err.message}",
        err.name,
    )


def _elevated(call: Call) -> bool:
    """A read-only user's request with external tables: as on a real server it may send
    them, so its fresh connection starts writable, creates them, and then turns to the
    user's readonly level before the query runs (URL settings stay refused)."""
    return bool(call.external) and bool(call.user.readonly)


def _invalid_auth(what: str) -> ClickHouseError:
    return ClickHouseError(
        AUTHENTICATION_FAILED,
        f"Invalid authentication: it is not allowed to use {what} simultaneously",
    )


def _raw_query_param(query_string: bytes) -> bytes:
    """The ``query`` URL parameter as bytes: Starlette's str would have replaced invalid
    UTF-8 with U+FFFD, and the engine must get the bytes as sent."""
    found = b""
    for part in query_string.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == b"query":
            found = unquote_to_bytes(value.replace(b"+", b" "))
    return found


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


# Decoded bytes a decoder hands over per thread hop.
_DECODE_STEP = 1 << 20


async def _decoded_body(request: Request, max_decompressed: int) -> AsyncGenerator[bytes, None]:
    """The request body, decoded. Decompression runs on worker threads a bounded step
    at a time, so a bomb neither blocks the event loop nor expands in memory; past
    ``max_decompressed`` decoded bytes the request fails (TOO_LARGE_SIZE_COMPRESSED)."""
    encoding = request.headers.get("content-encoding")
    dec = codecs.decoder(encoding)
    if dec is None:
        async for chunk in request.stream():
            if chunk:
                yield chunk
        return
    total = 0

    def step(data: bytes) -> bytes:
        try:
            if data:
                dec.push(data)
            return dec.pull(_DECODE_STEP)
        except ClickHouseError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt stream
            raise codecs.decode_error(encoding or "", exc) from exc

    async for chunk in request.stream():
        if not chunk:
            continue
        data = chunk
        while True:
            out = await run(step, data)
            data = b""
            if not out:
                break
            total += len(out)
            if total > max_decompressed:
                raise ClickHouseError(
                    TOO_LARGE_SIZE_COMPRESSED,
                    f"The decompressed request body exceeds {max_decompressed} bytes "
                    f"(max_decompressed_body_size; Content-Encoding: {encoding})",
                )
            yield out
            if len(out) < _DECODE_STEP:
                break
    dec.finish()

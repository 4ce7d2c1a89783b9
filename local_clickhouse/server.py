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
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import access, codecs, sqltext, system_tables
from .access import Account, quote
from .access import assignments as _assignments
from .engine import Connection, Engine, Session, Sessions
from .errors import (
    ACCESS_DENIED,
    AUTHENTICATION_FAILED,
    BAD_ARGUMENTS,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    READONLY,
    SOCKET_TIMEOUT,
    SYNTAX_ERROR,
    TOO_LARGE_SIZE_COMPRESSED,
    ClickHouseError,
)
from .guard import Guard
from .limits import MAX_CONCURRENT_QUERIES, Limits, run

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
# words a query that reads a system or information_schema table has in its text
# what the text of a query that reads a system (or only an information_schema) table has
_SYSTEM_TRIGGERS = re.compile(
    rb"system|information_schema|\bshow\b|\bdesc|\bexists\b|\bmerge\s*\(", re.I
)
_SCHEMA_TRIGGERS = re.compile(rb"information_schema|\bmerge\s*\(", re.I)
MAX_QUERY_BYTES = 64 * 1024 * 1024  # for non-INSERT bodies, which are read whole
# Decoded bytes a compressed request body may expand to (LOCAL_CLICKHOUSE_MAX_DECOMPRESSED).
MAX_DECOMPRESSED_BYTES = 1 << 30
_INSERT_CHUNK = 1 << 20
MAX_HEADER_VALUE = 128 * 1024
# A multipart form (external tables) may take this many decoded bytes, ClickHouse's
# http_max_multipart_form_data_size (LOCAL_CLICKHOUSE_MAX_FORM_BYTES); its files spool to
# disk, and a user's external tables are at most its max_memory_usage besides.
MAX_FORM_BYTES = 1 << 30
MAX_EXTERNAL_TABLES = 100
MAX_FORM_FIELDS = 1000
_HEAD_BYTES = 64 * 1024
PLAY_PAGE = Path(__file__).with_name("static") / "play.html"
# How often the users files are looked at (clickhouse-server's ConfigReloader: 2 s)
USERS_RELOAD_SECONDS = 2.0

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

    def usage(self) -> dict[str, float]:
        """The query's use of a quota's resources."""
        return {
            "result_rows": float(self.result_rows),
            "result_bytes": float(self.result_bytes),
            "read_rows": float(self.read_rows),
            "read_bytes": float(self.read_bytes),
            "written_bytes": float(self.written_bytes),
            "execution_time": self.elapsed_ns / 1e9,
        }

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
    user: Account
    params: dict[str, str]
    settings: dict[str, str]
    query_params: dict[str, str]
    external: list[External] = field(default_factory=list)
    readonly_method: bool = False
    form_body: bool = False  # the body was a form, already read: the query is in its fields
    query_bytes: bytes = b""  # the query parameter's bytes as sent (percent-decoded)
    session: Session | None = None  # the HTTP session the request runs in, once opened
    summary: Summary | None = None  # what the query read and wrote, once it runs
    slot: Callable[[Mapping[str, float]], None] | None = None  # gives the query slot back

    @property
    def format(self) -> str:
        return self.params.get("default_format") or "TabSeparated"


@dataclass
class External:
    """An external table of a multipart request: its data waits in a spooled file."""

    name: str
    structure: str
    format: str
    file: Any  # a binary file object (Starlette's spooled upload)
    size: int


class Server:
    def __init__(
        self,
        engine: Engine,
        max_decompressed: int = MAX_DECOMPRESSED_BYTES,
        receive_timeout: float = 30.0,
        allow_network: bool = False,
        max_form_bytes: int = MAX_FORM_BYTES,
        max_queries: int = MAX_CONCURRENT_QUERIES,
    ) -> None:
        self.max_decompressed = max_decompressed
        self.max_form_bytes = max_form_bytes
        self.receive_timeout = receive_timeout
        self.engine = engine
        self.limits = Limits(engine.accounts, max_queries)
        self.sessions = Sessions(engine)
        self.guard = Guard(
            str(engine.user_files), lambda: engine.connect(quiet=True), allow_network
        )
        self.hostname = engine.info.display_name or socket.gethostname()

    @property
    def accounts(self) -> access.Accounts:
        return self.engine.accounts  # the users as last (re)loaded

    def reload_users(self) -> bool | None:
        """The users files read again if they changed (Engine.reload_users)."""
        reloaded = self.engine.reload_users(self.sessions.close_idle)
        if reloaded:
            self.limits.update(self.engine.accounts)
        return reloaded

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
            Route("/play", self.play, methods=["GET", "HEAD"]),
            Route("/", self.query, methods=["GET", "POST", "HEAD"]),
            Route("/query", self.query, methods=["GET", "POST"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    def _lifespan(self, app: Starlette) -> Any:
        server = self

        class _Lifespan:
            async def __aenter__(self) -> None:
                async def sweep() -> None:
                    while True:
                        await anyio.sleep(1.0)
                        await run(server.sessions.expire)

                async def reload() -> None:
                    # as clickhouse-server's config reloader: a look every 2 s
                    while True:
                        await anyio.sleep(USERS_RELOAD_SECONDS)
                        await anyio.to_thread.run_sync(server.reload_users)

                self._tg = anyio.create_task_group()
                await self._tg.__aenter__()
                self._tg.start_soon(sweep)
                self._tg.start_soon(reload)

            async def __aexit__(self, *exc: Any) -> None:
                self._tg.cancel_scope.cancel()
                await self._tg.__aexit__(None, None, None)
                await run(server.sessions.close_all)

        return _Lifespan()

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("Ok.\n")

    async def play(self, request: Request) -> Response:
        """A SQL console in the browser, as clickhouse-server serves one at /play (its
        queries come back here, with the user's own name and password)."""
        return Response(PLAY_PAGE.read_bytes(), media_type="text/html; charset=UTF-8")

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
        call: Call | None = None
        try:
            call = await self._parse(request, query_id)
            self.limits.use_threads_of(call.user)
            return await self._execute(request, call)
        except Exception as exc:  # noqa: BLE001 - every failure is an HTTP error reply
            err = ClickHouseError.from_engine(exc)
            if call is not None:
                if call.user.quota is not None:
                    call.user.quota.add({"errors": 1.0})
                err = _as_user(err, call.user)
            await _drain(request)
            return self.error_response(err, query_id)

    async def _parse(self, request: Request, query_id: str) -> Call:
        params: dict[str, str] = dict(request.query_params)
        # who asks, before any of the body is read (as a server does: the credentials
        # are in the headers or the URL, never in a form's fields)
        user_name, password = self._credentials(request, params)
        client = request.client.host if request.client else None
        user = self.accounts.authenticate(user_name, password, client)
        external: list[External] = []
        ctype = request.headers.get("content-type", "")
        form_body = request.method == "POST" and ctype.startswith("multipart/form-data")
        if form_body:
            form = await self._form(request, _external_limit(user, self.max_form_bytes))
            files: dict[str, Any] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    if key not in ("user", "password", "quota_key"):
                        params[key] = value
                else:
                    files[key] = value
            for name, upload in files.items():
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
                external.append(External(name, structure, fmt, upload.file, upload.size or 0))
        if "role" in params:
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                "The `role` parameter is not available in the embedded ClickHouse: each user "
                "acts with all of its granted roles (use a real clickhouse-server to pick some)",
            )
        settings: dict[str, str] = {}
        query_params: dict[str, str] = {}
        for key, value in params.items():
            if key.startswith("param_"):
                query_params[key[len("param_") :]] = value
            elif key not in RESERVED:
                if not _SETTING_NAME.match(key):
                    raise ClickHouseError(BAD_ARGUMENTS, f"Invalid setting name: {key!r}")
                settings[key] = value
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

    # -- the request's form ----------------------------------------------------------------

    async def _form(self, request: Request, limit: int) -> Any:
        """A multipart body, parsed with ClickHouse's bounds: at most ``limit`` bytes of
        it, decoded, and a bounded count of parts. Files spool to disk past 1 MiB, so the
        form never sits whole in memory."""

        async def bounded() -> AsyncGenerator[bytes, None]:
            total = 0
            async for chunk in _decoded_body(request, self.max_decompressed):
                total += len(chunk)
                if total > limit:
                    raise ClickHouseError(
                        BAD_ARGUMENTS,
                        f"The multipart form data is larger than {limit} bytes (the server's "
                        "http_max_multipart_form_data_size, LOCAL_CLICKHOUSE_MAX_FORM_BYTES, or "
                        "the user's max_memory_usage: external tables live in memory)",
                    )
                yield chunk

        parser = MultiPartParser(
            request.headers,
            bounded(),
            max_files=MAX_EXTERNAL_TABLES,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=MAX_HEADER_VALUE,
        )
        try:
            return await parser.parse()
        except MultiPartException as exc:
            message = f"Cannot parse the multipart form: {exc}"
            raise ClickHouseError(BAD_ARGUMENTS, message) from None

    # -- connections ------------------------------------------------------------------------

    def _open(self, call: Call) -> tuple[Connection, Callable[[], None]]:
        """The engine connection for this request and the function that releases it.

        Runs on a worker thread, like everything that touches the engine; a request
        makes as few thread hops as it can, since each costs about 0.15 ms.
        """
        session_id = call.params.get("session_id")
        if not self._uses_session(call):
            # the server's own statements (the user's role and settings) stay out of
            # system.query_log; the last SET of _prepare turns logging back on
            conn = self.engine.connect(quiet=True)
            return conn, conn.close
        assert session_id
        session = self.sessions.acquire(
            session_id,
            call.user,
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
            if before and call.user.readonly != 1:
                try:
                    conn.raw.query(f"SET {_assignments(before)}", "TSV")
                except Exception:  # noqa: BLE001 - a setting the session cannot reset
                    pass
            if database:
                _use_database(conn.raw, database, call.user)

        return restore

    def _connect_and_prepare(self, call: Call) -> tuple[Connection, Callable[[], None]]:
        # the query's slot was taken before it waited for one of its user's threads
        # (past max_concurrent_queries_for_user a query is refused, not queued)
        assert call.slot is not None
        slot = call.slot
        try:
            conn, release = self._open(call)
        except BaseException:
            slot({})
            raise
        try:
            self._prepare(conn, call, self._uses_session(call))
        except BaseException:
            self._drop_external(conn, call)
            release()
            slot({})
            raise

        finished = False

        def finish() -> None:
            # once only: an error while fetching both closes the fetcher (which
            # finishes) and unwinds through the caller's own finish
            nonlocal finished
            if finished:
                return
            finished = True
            try:
                self._drop_external(conn, call)
                release()
            finally:
                slot(call.summary.usage() if call.summary else {})

        return conn, finish

    @staticmethod
    def _uses_session(call: Call) -> bool:
        """Whether the request runs on its session's connection. A read-only user's
        (readonly = 1) session could hold nothing: it can neither SET, USE a database
        for good, nor create tables; its requests run on connections of their own, each
        prepared as any request's (its external tables, its query's log comment)."""
        return bool(call.params.get("session_id")) and call.user.readonly != 1

    def _prepare(self, conn: Connection, call: Call, in_session: bool) -> None:
        """The connection made to act as the request's user, in ClickHouse's order: the
        user's role, profile and settings; then the request's database and settings,
        which the engine checks against the user's readonly level and constraints; the
        external tables; GET's readonly last."""
        raw = conn.raw
        account = call.user
        own: dict[str, str] = {"log_comment": call.query_id} if not in_session else {}
        database = call.params.get("database")
        if database:
            # a server sets the request's database without USE's SHOW DATABASES check
            _use_database(raw, database, account if in_session else None)
        if not in_session:
            roles = [account.role] + ([access.EXTERNAL_ROLE] if call.external else [])
            raw.query("SET ROLE " + ", ".join(_ident(r) for r in roles), "TSV")
            if account.readonly != 1:
                # its constraints (a readonly=1 user can change no setting at all)
                raw.query(f"SET profile = {quote(account.profile)}", "TSV")
            own.update(account.settings)
            if account.readonly == 2:
                own["readonly"] = "2"
        elif call.external:
            raw.query(f"SET ROLE {_ident(account.role)}, {_ident(access.EXTERNAL_ROLE)}", "TSV")
        if own:
            raw.query(f"SET {_assignments(own)}", "TSV")
        readonly_user = account.readonly == 1 and not in_session
        if readonly_user:
            if call.settings:
                name = next(iter(call.settings))
                raise ClickHouseError(
                    READONLY, f"Cannot modify '{name}' setting in readonly mode", "READONLY"
                )
            self._make_external(raw, call)
        elif call.settings:
            # the engine judges them: readonly, the user's constraints, unknown names
            raw.query(f"SET {_assignments(call.settings)}", "TSV")
        if not readonly_user:
            # external data is read with the request's settings, as on a server
            self._make_external(raw, call)
        final = {"log_queries": "1"} if not in_session else {}
        if readonly_user:
            final["readonly"] = "1"
        elif call.readonly_method and not in_session and account.readonly == 0:
            # GET is read-only by the engine's decision: once the URL's settings are
            # applied the connection turns readonly=1, and the engine refuses writes,
            # DDL, DETACH/ATTACH, INSERT INTO FUNCTION and further setting changes.
            # (A real server uses readonly=2; chDB's readonly=2 lets INSERT INTO
            # FUNCTION through.)
            final["readonly"] = "1"
        if final:
            raw.query(f"SET {_assignments(final)}", "TSV")

    def _make_external(self, raw: Any, call: Call) -> None:
        """The request's external tables, filled from their spooled files a step at a
        time; Values data is read as literals only (its expressions could call file()).
        The extra role that may create temporary tables is dropped afterwards."""
        if not call.external:
            return
        values = {n: "0" for n in access.VALUES_EXPRESSIONS}
        raw.query(f"SET {_assignments(values)}", "TSV")
        for table in call.external:
            # The structure is a query parameter the engine parses as a column list
            # (name type pairs) and nothing else: never pasted into the DDL's text.
            raw.query(
                f"CREATE TEMPORARY TABLE {_ident(table.name)} ENGINE = Memory "
                "AS SELECT * FROM null({structure:String})",
                "TSV",
                params={"structure": table.structure},
            )
            if not table.size:
                continue
            inserter = raw.send_insert(f"INSERT INTO {_ident(table.name)}", table.format)
            try:
                table.file.seek(0)
                while chunk := table.file.read(_INSERT_CHUNK):
                    raw.insert_append(inserter, chunk)
                raw.insert_done(inserter)
            except BaseException:
                # a session's connection must not stay inside a failed insert
                _cancel_insert(raw, inserter)
                raise
        if call.user.values_expressions:
            restore = {n: call.user.settings.get(n, "1") for n in values}
            raw.query(f"SET {_assignments(restore)}", "TSV")
        raw.query(f"SET ROLE {_ident(call.user.role)}", "TSV")

    @staticmethod
    def _drop_external(conn: Connection, call: Call) -> None:
        for table in call.external:
            try:
                conn.raw.query(f"DROP TEMPORARY TABLE IF EXISTS {_ident(table.name)}", "TSV")
            except Exception:  # noqa: BLE001
                pass

    # -- execution --------------------------------------------------------------------------

    async def _execute(self, request: Request, call: Call) -> Response:
        if call.params.get("compress") in ("1", "true") or call.params.get("decompress") in (
            "1",
            "true",
        ):
            # ClickHouse's own compressed-block framing (CityHash128 checksums, LZ4/ZSTD
            # blocks) is not implemented here: refused, never stored as garbage
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                "compress=1 and decompress=1 (ClickHouse's compressed block format) are not "
                "supported by the embedded ClickHouse; use HTTP compression instead "
                "(Content-Encoding, or enable_http_compression=1 with Accept-Encoding)",
            )
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
        call.slot = self.limits.start(
            call.user, "insert" if _first_word(query) == "INSERT" else "select"
        )
        try:
            started = await run(self._start_query, call, query)
        except BaseException:
            call.slot({})
            raise
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
        if split.format.lower() == "values" and call.user.values_expressions:
            # streamed Values data is never parsed by the guard: literals only (URL
            # settings hold for this request only, in a session too); every other user's
            # profile holds them off under a constraint (access.py)
            for name in access.VALUES_EXPRESSIONS:
                call.settings[name] = "0"
        statement = split.statement.encode("latin-1")
        # the insert's outcome is read back from the query log (_insert_failure): logged,
        # and, in a session too, under the request's query id
        if call.user.readonly != 1:  # (a read-only user's INSERT is refused anyway)
            call.settings["log_queries"] = "1"
            if call.params.get("session_id"):
                call.settings.setdefault("log_comment", call.query_id)

        values = split.format.lower() == "values"

        def begin() -> tuple[Connection, Callable[[], None], Any]:
            conn, finish = self._connect_and_prepare(call)
            try:
                parsed = self.guard.check(
                    statement + f" FORMAT {split.format}".encode(),
                    call.query_params,
                    0,
                    call.user,
                    call.readonly_method,
                    {**call.user.settings, **call.settings},
                    force=values,
                )
                if values and parsed and parsed.insert_settings:
                    raise _values_settings_refused()
                return conn, finish, conn.raw.send_insert(statement, split.format)
            except BaseException:
                finish()
                raise

        call.slot = self.limits.start(call.user, "insert")
        started = time.time()
        try:
            conn, finish, inserter = await run(begin)
        except BaseException:
            call.slot({})
            raise
        raw = conn.raw
        try:
            pending = bytearray(text[split.data_offset :])
            rows = _RowBound.of(call.user, split.format)
            rows.feed(pending)
            if not body_done:
                async for chunk in body:
                    rows.feed(chunk)
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
        summary = call.summary = Summary()
        if result is not None:
            summary.add(result)
        try:
            # chDB's streamed insert reports no error that happens as it finishes (a
            # materialized view that fails, a constraint): the query log has it
            failure = await run(self._insert_failure, call, started)
        finally:
            await run(finish)
        if failure is not None:
            raise failure
        headers = self._base_headers(call.query_id, call=call)
        headers["X-ClickHouse-Summary"] = summary.header()
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        return Response(b"", headers=headers)

    def _insert_failure(self, call: Call, started: float) -> ClickHouseError | None:
        """The error of a streamed INSERT that chDB let pass, from system.query_log
        (found by the request's log comment), or None if it succeeded."""
        marker = call.settings.get("log_comment") or call.query_id
        conn = self.engine.connect(quiet=True)
        try:
            conn.raw.query("SYSTEM FLUSH LOGS query_log", "TSV")
            data = bytes(
                conn.raw.query(
                    "SELECT exception FROM system.query_log WHERE event_date >= yesterday() "
                    "AND query_start_time >= toDateTime({start:Float64}) - 1 "
                    "AND type = 'ExceptionWhileProcessing' AND query_kind = 'Insert' "
                    "AND log_comment = {marker:String} LIMIT 1",
                    "JSONCompactEachRow",
                    params={"marker": marker, "start": f"{started:.3f}"},
                ).bytes()
            )
        finally:
            conn.close()
        rows = [json.loads(line)[0] for line in data.splitlines() if line.strip()]
        return ClickHouseError.from_engine(RuntimeError(rows[0])) if rows else None

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
        if kind["statement_count"] == 0:
            # it does not parse: the engine's own parser says why (a syntax error, a
            # parse depth past max_parser_depth...); EXPLAIN AST runs nothing
            raw.query(b"EXPLAIN AST " + query, "TSV", params=call.query_params)
        if kind["statement_count"] != 1:
            raise ClickHouseError(
                SYNTAX_ERROR,
                "Syntax error (Multi-statements are not allowed): send one statement per request",
            )
        # Values data is not in the parse the guard checks, and the engine evaluates
        # expressions in it (file('/etc/passwd') included): for a user whose profile
        # allows them, when the query or a parameter could name a guarded function, the
        # values are read as literals only (INSERT ... VALUES, format(Values, ...)).
        literal = call.user.values_expressions and (
            self.guard.could_name_file(query)
            or any(self.guard.could_name_file(v.encode()) for v in call.query_params.values())
        )
        parsed = self.guard.check(
            query,
            call.query_params,
            query_class,
            call.user,
            call.readonly_method,
            {**call.user.settings, **call.settings},
            force=literal,
        )
        restore = None
        literal = literal and parsed is not None and parsed.reads_values
        if literal:
            if call.session is None:
                # a fresh connection: a constraint holds them off, SETTINGS clauses too
                raw.query(f"SET profile = {quote(access.LITERAL_VALUES_PROFILE)}", "TSV")
                off = {n: "0" for n in access.VALUES_EXPRESSIONS}
                raw.query(f"SET {_assignments(off)}", "TSV")
            elif parsed is not None and parsed.has_settings:  # never None here
                raise _values_settings_refused()
            else:
                restore = _literal_values_only(raw)
        system_check = self._reads_system(call, query)
        comment_before = None
        if system_check and (call.session is not None or "log_comment" in call.settings):
            # the check finds the query by its log comment: the request's query id (a
            # session's own comment comes back after the query)
            if call.session is not None:
                comment_before = bytes(
                    raw.query("SELECT getSetting('log_comment')", "TSVRaw").bytes()
                ).decode()
            raw.query(f"SET log_comment = {quote(call.query_id)}", "TSV")
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
            query_class == 0
            and kind["statement_count"] == 1
            and bool(_STREAMABLE.match(fmt))
            and restore is None
            and not system_check
        )
        summary = call.summary = Summary()
        stream = None
        if streamable:
            try:
                stream = raw.send_query(query, fmt, params=call.query_params)
            except Exception as exc:  # noqa: BLE001
                # chDB streams SELECTs but refuses EXISTS, SHOW CREATE and a few others.
                if "Streaming query is not supported" not in str(exc):
                    raise
        if stream is None:
            try:
                result = raw.query(query, fmt, params=call.query_params)
            except Exception as exc:  # noqa: BLE001 - re-raised, explained if it can be
                result = _show_create_system_table(raw, exc, query, fmt)
                if result is None:
                    raise _access_management_hint(exc, query) from exc
            finally:
                if restore:
                    raw.query(restore, "TSV")
                if comment_before is not None:
                    previous = comment_before.removesuffix("\n")
                    raw.query(f"SET log_comment = {quote(previous)}", "TSV")
            summary.add(result)
            if system_check:
                self._check_system_reads(call)
            if call.session and root and root.startswith("UseQuery"):
                call.session.database = root.split(" ", 1)[1] if " " in root else ""
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

    # -- reads of system tables -------------------------------------------------------------

    def _reads_system(self, call: Call, query: bytes) -> bool:
        """Whether the query could read a system or information_schema table its user may
        not read (see access.py): its text names one of those databases or a statement
        that reads them (SHOW, DESCRIBE, merge()), or its current database is one."""
        grants = call.user.system_grants
        unchecked = [
            db for db in ("system", "information_schema") if not grants.covers_database(db)
        ]
        if not unchecked:
            return False
        triggers = _SYSTEM_TRIGGERS if "system" in unchecked else _SCHEMA_TRIGGERS
        if triggers.search(query):
            return True
        database = call.params.get("database") or (call.session.database if call.session else "")
        return database.lower() in unchecked

    def _check_system_reads(self, call: Call) -> None:
        """What the query read, as ClickHouse's access checker recorded it in
        system.query_log (used_privileges), against the user's grants with the
        server's ``select_from_system_db_requires_grant`` rule. The result is withheld
        on a refusal; a read changed nothing."""
        conn = self.engine.connect(quiet=True)
        try:
            conn.raw.query("SYSTEM FLUSH LOGS query_log", "TSV")
            data = conn.raw.query(
                "SELECT used_privileges FROM system.query_log WHERE event_date >= yesterday() "
                "AND event_time >= now() - 3600 AND type = 'QueryFinish' "
                "AND log_comment = {marker:String}",
                "JSONCompactEachRow",
                params={"marker": call.query_id},
            ).bytes()
        finally:
            conn.close()
        rows = [json.loads(line)[0] for line in bytes(data).splitlines() if line.strip()]
        if not rows:
            raise ClickHouseError(
                ACCESS_DENIED,
                f"{call.user.name}: this query may read system tables, which the embedded "
                "ClickHouse checks in system.query_log, and it left no row there "
                "(log_queries = 0?)",
            )
        for used in (p for row in rows for p in row):
            denied = system_tables.read_denied(call.user, used)
            if denied:
                raise ClickHouseError(
                    ACCESS_DENIED,
                    f"{call.user.name}: Not enough privileges. To execute this query, it's "
                    f"necessary to have the grant {denied}",
                )

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


def _cancel_insert(raw: Any, inserter: Any) -> None:
    try:
        raw.insert_cancel(inserter)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def _values_settings_refused() -> ClickHouseError:
    return ClickHouseError(
        BAD_ARGUMENTS,
        "A query whose Values data may call functions cannot carry its own SETTINGS "
        "clause in an HTTP session of the embedded ClickHouse (its expressions are read "
        "as literals only, see README: Security); pass the settings as URL parameters",
    )


def _literal_values_only(raw: Any) -> str:
    """Turn off expressions in Values data on this connection; the SET that restores it."""
    listed = ", ".join(quote(n) for n in access.VALUES_EXPRESSIONS)
    rows = raw.query(
        f"SELECT name, value FROM system.settings WHERE name IN ({listed})", "JSONCompactEachRow"
    ).bytes()
    before = dict(json.loads(line) for line in bytes(rows).splitlines() if line)
    raw.query("SET " + ", ".join(f"{n} = 0" for n in access.VALUES_EXPRESSIONS), "TSV")
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
    if not access or err.code in (62, 497):
        return exc  # a syntax error, or a user without the grant: the engine's own answer
    return ClickHouseError(
        err.code,
        f"{' '.join(words)}: SQL access management (users, roles, grants, quotas, row "
        "policies) is not available in the embedded ClickHouse, whose engine (chDB) has no "
        "writable access storage. Define them in its users file, in clickhouse-server's "
        "own format (--users FILE or --users-d FOLDER), or use a real clickhouse-server. "
        f"The engine said: {err.message}",
        err.name,
    )


def _as_user(err: ClickHouseError, account: Account) -> ClickHouseError:
    """The engine names its own user (``default: Not enough privileges...``); the
    request's user is who the message is about."""
    if account.name != "default" and err.message.startswith("default: "):
        return ClickHouseError(err.code, f"{account.name}: {err.message[9:]}", err.name)
    return err


# Text formats with a row per line: a row longer than an eighth of the user's
# max_memory_usage is refused as it streams in. The engine grows a field's buffer by
# doubling and copying, and its process took about 5 times a field's size to read one
# (64 MiB of one field: +336 MiB, measured in chDB alone), past the user's limit before
# the engine's own check refused it.
_LINE_FORMATS = re.compile(
    r"^(TabSeparated|TSV|CSV|JSONEachRow|JSONLines|NDJSON|JSONCompactEachRow|"
    r"JSONStringsEachRow|JSONCompactStringsEachRow|LineAsString|CustomSeparated)\w*$",
    re.I,
)


class _RowBound:
    """Watches INSERT data for a row longer than its bound (TOO_LARGE_STRING_SIZE)."""

    def __init__(self, limit: int, who: str) -> None:
        self.limit = limit
        self.who = who
        self.current = 0  # bytes since the last line break

    @classmethod
    def of(cls, account: Account, fmt: str) -> _RowBound:
        memory = int(account.settings.get("max_memory_usage", "0") or 0)
        limit = memory // 8 if memory and _LINE_FORMATS.match(fmt) else 0
        return cls(limit, account.name)

    def feed(self, data: bytes | bytearray) -> None:
        if not self.limit:
            return
        last = data.rfind(b"\n")
        self.current = len(data) - last - 1 if last >= 0 else self.current + len(data)
        if self.current > self.limit:
            raise ClickHouseError(
                131,
                f"{self.who}: a row of the INSERT data is longer than {self.limit} bytes, an "
                "eighth of the user's max_memory_usage (the embedded ClickHouse refuses it "
                "as it arrives: the engine would need more than the limit to hold it)",
                "TOO_LARGE_STRING_SIZE",
            )


def _use_database(raw: Any, database: str, account: Account | None) -> None:
    """The connection's current database, set as a server sets a request's (the HTTP
    ``database`` parameter, a session's): it must exist, but unlike ``USE`` it needs no
    SHOW DATABASES grant. ``account``: the connection already acts as it (a session's),
    so the server's role is taken for the moment and the user's given back."""
    if account is not None:
        raw.query(f"SET ROLE {_ident(access.INTERNAL_ROLE)}", "TSV")
    try:
        raw.query(f"USE {_ident(database)}", "TSV")
    finally:
        if account is not None:
            raw.query(f"SET ROLE {_ident(account.role)}", "TSV")


def _external_limit(account: Account, server_limit: int) -> int:
    """How many bytes a user's multipart form may hold: the server's bound, and its
    max_memory_usage (its external tables live in the engine's memory)."""
    limit = int(account.settings.get("max_memory_usage", "0") or 0)
    return min(server_limit, limit) if limit else server_limit


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


# An error answered before the request's body was read (a login refused): the body is
# read first, up to this much, so that the connection closes (or is kept) after the
# client has the answer. Closed with the body unread, the kernel resets the connection
# and the client (or a proxy in front, Caddy) may lose the answer it was sent.
_DRAIN_BYTES = 1 << 20


async def _drain(request: Request) -> None:
    if request.method not in ("POST", "PUT"):
        return
    read = 0
    try:
        with anyio.move_on_after(2.0):
            async for chunk in request.stream():
                read += len(chunk)
                if read > _DRAIN_BYTES:
                    break
    except Exception:  # noqa: BLE001 - read already, or the client went away
        pass


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

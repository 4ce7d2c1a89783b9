"""Start the embedded server: bind, lock the data folder, open the engine, serve."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
from pathlib import Path
from types import FrameType

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .engine import Engine
from .limits import MAX_CONCURRENT_QUERIES
from .server import MAX_DECOMPRESSED_BYTES, MAX_FORM_BYTES, Server

log = logging.getLogger("local_clickhouse")


class StartupError(RuntimeError):
    """A one-line reason the server cannot start (port taken, folder in use...)."""


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would skip
    closing the engine and exit with -15; here a signal is the normal way to stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


# A request head (request line and headers) may take this many bytes, ClickHouse's
# http_max_uri_size; past it the answer is 400. Header values past
# MAX_HEADER_VALUE are refused by the app (431).
MAX_HEAD_BYTES = 1 << 20
RECEIVE_TIMEOUT = 30.0  # ClickHouse's http_receive_timeout


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with what it lacks against a hostile client:

    - a request head must arrive whole within the receive timeout (uvicorn waits for
      a half-sent head forever, and a keep-alive timer stops at the first byte);
    - a head past the size limit gets its 400 and the connection is then half-closed
      and drained for a moment, so the client reads the answer instead of a reset.
    """

    receive_timeout = RECEIVE_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None
    _draining = False

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.receive_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            if self.conn.their_state is not h11.IDLE or self.timeout_keep_alive_task is None:
                # a half-sent head (or nothing at all on a new connection)
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        if self._waiting_for_head():
            self._arm()
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # idle keep-alive is uvicorn's timer; a head that starts must then finish in time
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        body = (msg + " (the request head is too large or malformed)\n").encode()
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            try:
                self.transport.write(self.conn.send(event) or b"")
            except h11.LocalProtocolError:
                break
        self._draining = True
        self._disarm()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(2.0, self.transport.close)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise StartupError(f"{name} must be a whole number of bytes, not {value!r}") from None
    if number <= 0:
        raise StartupError(f"{name} must be positive, not {value}")
    return number


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit TCP_NODELAY on Linux. Without it a reply sent as headers
    # then body meets the client's delayed ACK: every small query took ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already taken: is another ClickHouse running? "
                "Choose another with --port"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(
    data: str | Path,
    host: str = "127.0.0.1",
    port: int = 8123,
    users_file: str | Path | None = None,
    log_level: str = "warning",
    max_decompressed: int | None = None,
    users_d: str | Path | None = None,
) -> None:
    """Serve ``data`` over ClickHouse's HTTP interface until SIGTERM or Ctrl-C.

    The engine is open before the port accepts connections, so ``/ping`` answers only
    once queries can run. On shutdown uvicorn finishes the requests in flight (an
    insert that was acknowledged is in the engine's parts), then sessions and the engine
    close.
    """
    if max_decompressed is None:
        max_decompressed = _env_int("LOCAL_CLICKHOUSE_MAX_DECOMPRESSED", MAX_DECOMPRESSED_BYTES)
    receive_timeout = float(_env_int("LOCAL_CLICKHOUSE_RECEIVE_TIMEOUT", int(RECEIVE_TIMEOUT)))
    # url(), s3(), remote() and their kin reach other hosts only when the admin says so
    allow_network = os.environ.get("LOCAL_CLICKHOUSE_ALLOW_NETWORK", "").strip().lower()
    if allow_network not in ("", "0", "1", "false", "true"):
        raise StartupError(f"LOCAL_CLICKHOUSE_ALLOW_NETWORK must be 0 or 1, not {allow_network!r}")
    sock = bind(host, port)
    # Engine calls run on worker threads; a shorter switch interval hands the GIL back
    # to the event loop sooner when a worker finishes (about 1 ms off a small query).
    sys.setswitchinterval(0.0005)
    users_file = users_file or os.environ.get("LOCAL_CLICKHOUSE_USERS") or None
    if users_file and users_d:
        sock.close()
        raise StartupError("give --users or --users-d, not both")
    max_form = _env_int("LOCAL_CLICKHOUSE_MAX_FORM_BYTES", MAX_FORM_BYTES)
    max_queries = _env_int("LOCAL_CLICKHOUSE_MAX_CONCURRENT_QUERIES", MAX_CONCURRENT_QUERIES)
    try:
        # Relative paths in file() and File tables, and tables named by a relative path
        # (the default database's file overlay, which keeps the working directory chDB
        # starts in), resolve from the working directory: make it the user files folder
        # before the engine starts, as a real server resolves them from its
        # user_files_path (from where it was launched, `SELECT * FROM '.env'` read the
        # launch folder's files).
        data = Path(data).resolve()
        users_file = Path(users_file).resolve() if users_file else None
        users_d = Path(users_d).resolve() if users_d else None
        (data / "user_files").mkdir(parents=True, exist_ok=True)
        os.chdir(data / "user_files")
        try:
            engine = Engine(data, users_file=users_file, users_d=users_d)
        except (RuntimeError, ValueError) as exc:
            raise StartupError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    try:
        network = allow_network in ("1", "true")
        server_app = Server(
            engine,
            max_decompressed,
            receive_timeout,
            network,
            max_form_bytes=max_form,
            max_queries=max_queries,
        )
        app = server_app.app()
        protocol = type("Protocol", (_Protocol,), {"receive_timeout": receive_timeout})
        config = uvicorn.Config(
            app,
            http=protocol,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=10,
            timeout_graceful_shutdown=30,
            lifespan="on",
        )
        server = _Server(config)
        log.info("ClickHouse %s serving %s on http://%s:%d", engine.info.version, data, host, port)
        server.run(sockets=[sock])
    finally:
        engine.close()
        sock.close()

"""Start the embedded server: bind, lock the data folder, open the engine, serve."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from .engine import Engine
from .server import MAX_DECOMPRESSED_BYTES, Server
from .users import Users

log = logging.getLogger("local_clickhouse")


class StartupError(RuntimeError):
    """A one-line reason the server cannot start (port taken, folder in use...)."""


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would skip
    closing the engine and exit with -15; here a signal is the normal way to stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


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
) -> None:
    """Serve ``data`` over ClickHouse's HTTP interface until SIGTERM or Ctrl-C.

    The engine is open before the port accepts connections, so ``/ping`` answers only
    once queries can run. On shutdown uvicorn finishes the requests in flight (an
    insert that was acknowledged is in the engine's parts), then sessions and the engine
    close.
    """
    if max_decompressed is None:
        max_decompressed = _env_int("LOCAL_CLICKHOUSE_MAX_DECOMPRESSED", MAX_DECOMPRESSED_BYTES)
    sock = bind(host, port)
    # Engine calls run on worker threads; a shorter switch interval hands the GIL back
    # to the event loop sooner when a worker finishes (about 1 ms off a small query).
    sys.setswitchinterval(0.0005)
    try:
        users = Users.load(users_file)
        try:
            engine = Engine(data)
        except RuntimeError as exc:
            raise StartupError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    try:
        # Relative paths in file() and File tables resolve from the working directory:
        # make it the user files folder, as a real server resolves them from its
        # user_files_path.
        os.chdir(engine.user_files)
        app = Server(engine, users, max_decompressed).app()
        config = uvicorn.Config(
            app,
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

"""The chDB engine behind the embedded server: one engine per process, owning one folder.

``chdb.connect(path)`` may be opened many times in a process; each connection is an
engine session of its own (its ``SET``, ``USE`` and temporary tables), and queries on
different connections run in parallel. The server opens a fresh connection for every
request that has no ``session_id`` (so nothing leaks between requests) and keeps one
per HTTP session.

The folder holds the engine's data under ``clickhouse/`` and a generated
``config.xml`` that turns on ``system.query_log``. A lock file keeps a second process
from opening the same folder.
"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chdb

from .errors import (
    INVALID_SESSION_TIMEOUT,
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    ClickHouseError,
)

_CONFIG = """<clickhouse>
  <display_name>{display_name}</display_name>
  <user_files_path>{user_files}/</user_files_path>
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <flush_interval_milliseconds>7500</flush_interval_milliseconds>
  </query_log>
  <user_directories>
    <users_xml><path>{users}</path></users_xml>
  </user_directories>
</clickhouse>
"""

_USERS = """<clickhouse>
  <profiles>
    <default>
      <constraints>{constraints}</constraints>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <profile>default</profile>
      <quota>default</quota>
      <networks><ip>::/0</ip></networks>
      <access_management>1</access_management>
    </default>
  </users>
  <quotas><default/></quotas>
</clickhouse>
"""

# Settings that name files the engine reads or writes (format schemas, Template format
# templates): clickhouse-local does not confine them to a folder, so here they cannot be
# changed at all: a constraint of the engine's profile (SETTING_CONSTRAINT_VIOLATION).
PATH_SETTINGS = (
    "format_schema",
    "output_format_schema",
    "format_template_resultset",
    "format_template_row",
    "format_template_resultset_format",
    "format_template_row_format",
    "format_schema_source",
)

# Settings every new engine connection starts with. chDB's own session default is
# async_insert=1; a server's is 0, and the loader relies on synchronous inserts.
_CONNECTION_DEFAULTS = "async_insert=0&wait_for_async_insert=1"


class DataFolderInUse(RuntimeError):
    pass


class Connection:
    """One engine connection. ``raw`` is chdb's native object (query, send_query,
    send_insert, classify_query); the Python wrapper is kept alive beside it because
    its finaliser closes the native connection."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper
        self.raw: Any = wrapper._conn

    def close(self) -> None:
        self._wrapper.close()


@dataclass
class EngineInfo:
    version: str
    timezone: str
    display_name: str


class Engine:
    def __init__(self, data_dir: str | Path, display_name: str = "wiki-events-local") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / ".lock", "a+")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise DataFolderInUse(
                f"data folder {self.data_dir} is in use by another process "
                "(another `wiki-events clickhouse` is serving it)"
            ) from None
        self._lock_file.truncate(0)
        self._lock_file.write(f"{os.getpid()}\n")
        self._lock_file.flush()
        # file() and its kin read and write only here (see guard.py); the server runs
        # with this folder as its working directory, so relative paths land in it.
        self.user_files = self.data_dir / "user_files"
        self.user_files.mkdir(exist_ok=True)
        users = self.data_dir / "users.xml"
        users.write_text(
            _USERS.format(constraints="".join(f"<{n}><const/></{n}>" for n in PATH_SETTINGS))
        )
        config = self.data_dir / "config.xml"
        config.write_text(
            _CONFIG.format(display_name=display_name, users=users, user_files=self.user_files)
        )
        engine_path = self.data_dir / "clickhouse"
        self._base = f"{engine_path}?config-file={config}"
        # The anchor connection keeps the engine up for the life of the server.
        self._anchor = self.connect()
        version, tz = (
            self._anchor.raw.query("SELECT version(), timezone()", "TSV").bytes().decode().split()
        )
        self.info = EngineInfo(version=version, timezone=tz, display_name=display_name)

    def connect(self, readonly: int = 0, quiet: bool = False) -> Connection:
        """A new engine connection: an engine session of its own.

        ``quiet`` starts it with ``log_queries=0`` so that the server's own statements
        (the SET of a request's URL settings, USE, external tables) stay out of
        ``system.query_log``; the request's SET turns logging back on for the client's
        query. Session connections and read-only users' (who cannot SET) log throughout.
        """
        extra = "&log_queries=0" if quiet and not readonly else ""
        extra += f"&readonly={readonly}" if readonly else ""
        return Connection(chdb.connect(f"{self._base}&{_CONNECTION_DEFAULTS}{extra}"))

    def close(self) -> None:
        try:
            self._anchor.raw.query("SYSTEM FLUSH LOGS", "TSV")
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass
        self._anchor.close()
        self._lock_file.close()


@dataclass
class Session:
    id: str
    user: str
    conn: Connection
    timeout: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    timezone: str = ""  # the session_timezone the session SET, "" for the server's

    def expired(self, now: float) -> bool:
        return not self.lock.locked() and now - self.last_used > self.timeout


class Sessions:
    """HTTP sessions: one engine connection per ``session_id``, expiring after their timeout."""

    DEFAULT_TIMEOUT = 60.0
    MAX_TIMEOUT = 3600.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions: dict[str, Session] = {}
        self._guard = threading.Lock()

    def acquire(
        self, session_id: str, user: str, readonly: int, timeout: str | None, check: bool
    ) -> Session:
        seconds = self.DEFAULT_TIMEOUT
        if timeout is not None:
            try:
                seconds = float(timeout)
            except ValueError:
                raise ClickHouseError(
                    INVALID_SESSION_TIMEOUT, f"Invalid session timeout: '{timeout}'"
                ) from None
            if not math.isfinite(seconds) or seconds < 0:
                raise ClickHouseError(
                    INVALID_SESSION_TIMEOUT,
                    f"Invalid session timeout: '{timeout}' (a number of seconds, 0 to "
                    f"{int(self.MAX_TIMEOUT)})",
                )
            if seconds > self.MAX_TIMEOUT:
                raise ClickHouseError(
                    INVALID_SESSION_TIMEOUT,
                    f"Session timeout '{timeout}' is larger than max_session_timeout: "
                    f"{int(self.MAX_TIMEOUT)}. Maximum session timeout could be modified "
                    "in configuration file.",
                )
        with self._guard:
            session = self._sessions.get(session_id)
            if session is not None and session.user != user:
                # another user's session is not visible to this one
                raise ClickHouseError(SESSION_NOT_FOUND, f"Session {session_id} not found")
            if session is None:
                if check:
                    raise ClickHouseError(SESSION_NOT_FOUND, f"Session {session_id} not found")
                session = Session(session_id, user, self._engine.connect(readonly), seconds)
                self._sessions[session_id] = session
            if not session.lock.acquire(blocking=False):
                raise ClickHouseError(
                    SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client"
                )
            session.timeout = seconds
            return session

    def release(self, session: Session, close: bool = False) -> None:
        session.last_used = time.monotonic()
        session.lock.release()
        if close:
            with self._guard:
                if self._sessions.get(session.id) is session:
                    del self._sessions[session.id]
            session.conn.close()

    def expire(self) -> int:
        now = time.monotonic()
        with self._guard:
            gone = [s for s in self._sessions.values() if s.expired(now)]
            for s in gone:
                del self._sessions[s.id]
        for s in gone:
            s.conn.close()
        return len(gone)

    def close_all(self) -> None:
        with self._guard:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.conn.close()

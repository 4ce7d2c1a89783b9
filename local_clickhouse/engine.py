"""The chDB engine behind the embedded server: one engine per process, owning one folder.

``chdb.connect(path)`` may be opened many times in a process; each connection is an
engine session of its own (its ``SET``, ``USE`` and temporary tables), and queries on
different connections run in parallel. The server opens a fresh connection for every
request that has no ``session_id`` (so nothing leaks between requests) and keeps one
per HTTP session.

The folder holds the engine's data under ``clickhouse/`` and, under ``access/users-N/``,
the users as last read (copies) and a generated ``config.xml`` that loads them and turns
on ``system.query_log``. A lock file keeps a second process
from opening the same folder.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chdb

from . import access
from .errors import (
    INVALID_SESSION_TIMEOUT,
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    ClickHouseError,
)

log = logging.getLogger("local_clickhouse")

_CONFIG = """<clickhouse>
  <display_name>{display_name}</display_name>
  <user_files_path>{user_files}/</user_files_path>
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <flush_interval_milliseconds>7500</flush_interval_milliseconds>
  </query_log>
  <users_config>{users}</users_config>
</clickhouse>
"""

# Settings every new engine connection starts with. chDB's own session default is
# async_insert=1; a server's is 0, and the loader relies on synchronous inserts.
_CONNECTION_DEFAULTS = "async_insert=0&wait_for_async_insert=1"


class DataFolderInUse(RuntimeError):
    pass


class Connection:
    """One engine connection. ``raw`` is chdb's native object (query, send_query,
    send_insert, classify_query); the Python wrapper is kept alive beside it because
    its finaliser closes the native connection."""

    def __init__(self, wrapper: Any, on_close: Callable[[], None] | None = None) -> None:
        self._wrapper = wrapper
        self.raw: Any = wrapper._conn
        self._on_close = on_close

    def close(self) -> None:
        try:
            self._wrapper.close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:  # once
                on_close()


@dataclass
class EngineInfo:
    version: str
    timezone: str
    display_name: str


class Engine:
    def __init__(
        self,
        data_dir: str | Path,
        users_file: str | Path | None = None,
        display_name: str = "wiki-events-local",
        users_d: str | Path | None = None,
    ) -> None:
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
        # The users: ClickHouse reads the file (access.py), the engine loads it with the
        # embedded server's overlay (a role and a profile per user, the proxy). Read
        # again when the files change (reload_users), as clickhouse-server's config
        # reloader does.
        self._work = self.data_dir / "access"
        shutil.rmtree(self._work, ignore_errors=True)  # the users as an earlier run read them
        self._users_d = Path(users_d) if users_d is not None else None
        self._users_given = Path(users_file) if users_file is not None else None
        self._display_name = display_name
        self._gate = threading.Condition()
        self._open = 0  # request and session connections (the anchor not counted)
        self._paused = False
        self._generation = 0
        self._watched = access.watched_files(self._users_given, self._users_d)
        main = self._snapshot(self._generation)
        self.users_file = main
        self.accounts = access.probe(main, self._generation_dir(0) / "probe")
        self._base = self._configure(0, main, self.accounts)
        # The anchor connection keeps the engine up for the life of the server.
        self._anchor = self._raw_connect(self._base)
        version, tz = (
            self._anchor.raw.query("SELECT version(), timezone()", "TSV").bytes().decode().split()
        )
        self.info = EngineInfo(version=version, timezone=tz, display_name=display_name)
        access.prepare(self.accounts, self._anchor.raw, lambda: self._raw_connect(self._base))

    # -- the users, and their reload -----------------------------------------------------

    def _generation_dir(self, generation: int) -> Path:
        return self._work / f"users-{generation}"

    def _snapshot(self, generation: int) -> Path:
        """The users as they are now, copied (access.stage): the main file to load."""
        work = self._generation_dir(generation)
        if self._users_d is not None:
            # clickhouse-server's own users.xml with these users.d/ files on it
            return access.server_users(self._users_d, work / "server")
        if self._users_given is None:
            builtin = work / "builtin" / "users.xml"
            builtin.parent.mkdir(parents=True, exist_ok=True)
            builtin.write_text(access.BUILTIN_USERS_XML)
            return builtin
        return access.stage(self._users_given, work / "given", None)

    def _configure(self, generation: int, main: Path, accounts: access.Accounts) -> str:
        """The engine's config for these users; the connection string that loads it."""
        work = self._generation_dir(generation)
        users = access.stage(main, work / "engine", access.overlay(accounts))
        config = work / "config.xml"
        config.write_text(
            _CONFIG.format(
                display_name=self._display_name,
                users=access.xml_text(str(users)),
                user_files=self.user_files,
            )
        )
        return f"{self.data_dir / 'clickhouse'}?config-file={config}"

    def reload_users(
        self, close_idle_sessions: Callable[[], object], drain_seconds: float = 10.0
    ) -> bool | None:
        """The users read again when their files changed since the last look (None when
        they did not), as clickhouse-server's config reloader does every few seconds:
        users added, changed or removed take effect without a restart. A file ClickHouse
        cannot load leaves the users as they were (False, the reason logged), as on a
        server.

        chDB reads its users only when its engine starts, so the engine is restarted in
        place: the new files are read first in a child process (nothing changes when
        they are bad), then new requests wait, idle sessions close (their state, SETs
        and temporary tables, goes: the one difference from a server), running requests
        finish (up to ``drain_seconds``; else the reload waits for the next look), and
        the engine reopens on the same data with the new users. It takes well under a
        second."""
        seen = access.watched_files(self._users_given, self._users_d)
        if seen == self._watched:
            return None
        generation = self._generation + 1
        work = self._generation_dir(generation)
        try:
            main = self._snapshot(generation)
            accounts = access.probe_apart(main, work / "probe")
            base = self._configure(generation, main, accounts)
        except (access.UsersFileError, OSError) as exc:
            log.error("the users were not reloaded; the old ones stay in force: %s", exc)
            self._watched = seen
            shutil.rmtree(work, ignore_errors=True)
            return False
        started = time.monotonic()
        with self._gate:
            self._paused = True
        try:
            if not self._drain(close_idle_sessions, drain_seconds):
                log.warning(
                    "the users changed, but requests ran for %.0f s: reloading at the next look",
                    drain_seconds,
                )
                shutil.rmtree(work, ignore_errors=True)
                return False
            self._anchor.close()
            try:
                anchor = self._raw_connect(base)
                access.prepare(accounts, anchor.raw, lambda: self._raw_connect(base))
            except Exception as exc:  # noqa: BLE001 - the old users come back
                log.error("the users were not reloaded; the old ones stay in force: %s", exc)
                self._anchor = self._raw_connect(self._base)
                self._watched = seen
                return False
            old = self.accounts.by_name
            for account in accounts:
                before = old.get(account.name)
                if account.quota is not None and account.quota.same_limits(
                    before.quota if before else None
                ):
                    assert before is not None
                    account.quota = before.quota  # its counters go on
            previous = self._generation_dir(self._generation)
            self._anchor, self._base, self.accounts = anchor, base, accounts
            self.users_file, self._generation, self._watched = main, generation, seen
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            with self._gate:
                self._paused = False
                self._gate.notify_all()
        log.warning(
            "users reloaded (%d users) in %.2f s",
            len(accounts.by_name),
            time.monotonic() - started,
        )
        return True

    def _drain(self, close_idle_sessions: Callable[[], object], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            close_idle_sessions()
            with self._gate:
                if self._open == 0:
                    return True
                if time.monotonic() > deadline:
                    self._paused = False
                    self._gate.notify_all()
                    return False
                self._gate.wait(0.05)

    def _raw_connect(self, base: str, extra: str = "") -> Connection:
        return Connection(chdb.connect(f"{base}&{_CONNECTION_DEFAULTS}{extra}"))

    def _closed(self) -> None:
        with self._gate:
            self._open -= 1
            self._gate.notify_all()

    def connect(self, account: access.Account | None = None, quiet: bool = False) -> Connection:
        """A new engine connection: an engine session of its own.

        With ``account`` it acts as that user for good (its role, settings, constraints
        and readonly level: an HTTP session's connection); without, it holds every role
        (the server's own statements, and a request's until ``Server._prepare`` has run).
        ``quiet`` starts it with ``log_queries=0`` so that the server's own statements
        stay out of ``system.query_log``; the request's last SET turns logging back on.
        """
        extra = "&log_queries=0" if quiet or account else ""
        with self._gate:
            while self._paused:  # the users are being reloaded: a moment
                self._gate.wait()
            self._open += 1
        try:
            conn = Connection(
                chdb.connect(f"{self._base}&{_CONNECTION_DEFAULTS}{extra}"), self._closed
            )
        except BaseException:
            self._closed()
            raise
        if account is not None:
            try:
                access.act_as(conn.raw, account)
            except BaseException:
                conn.close()
                raise
        return conn

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
    database: str = ""  # the database the session USEd, "" for the default

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
        self, session_id: str, account: access.Account, timeout: str | None, check: bool
    ) -> Session:
        user = account.name
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
        fresh: Connection | None = None
        while True:
            with self._guard:
                session = self._sessions.get(session_id)
                if session is not None and fresh is not None:
                    fresh.close()  # another request made it meanwhile
                if session is not None and session.user != user:
                    # another user's session is not visible to this one
                    raise ClickHouseError(SESSION_NOT_FOUND, f"Session {session_id} not found")
                if session is None and check:
                    raise ClickHouseError(SESSION_NOT_FOUND, f"Session {session_id} not found")
                if session is None and fresh is not None:
                    session = Session(session_id, user, fresh, seconds)
                    self._sessions[session_id] = session
                if session is not None:
                    if not session.lock.acquire(blocking=False):
                        raise ClickHouseError(
                            SESSION_IS_LOCKED,
                            f"Session {session_id} is locked by a concurrent client",
                        )
                    session.timeout = seconds
                    return session
            # outside the guard: a users reload holds new connections back meanwhile,
            # and closes idle sessions under the guard
            fresh = self._engine.connect(account)

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

    def close_idle(self) -> int:
        """Close every session no request is using (a users reload's drain)."""
        with self._guard:
            idle = [s for s in self._sessions.values() if not s.lock.locked()]
            for s in idle:
                del self._sessions[s.id]
        for s in idle:
            s.conn.close()
        return len(idle)

    def close_all(self) -> None:
        with self._guard:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.conn.close()

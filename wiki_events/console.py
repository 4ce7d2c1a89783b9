"""``wiki-events sql``: a SQL console against ClickHouse (``CLICKHOUSE_URL``).

One-shot (``wiki-events sql "SELECT ..."``) or interactive: statements end with ``;``,
``\\q`` (or ``exit``) leaves, history is kept in ``$WIKI_EVENTS_DATA/sql_history``. The
console speaks ClickHouse's HTTP interface, so it works the same against the embedded
server and a real one; one session per console, so ``SET`` and ``USE`` persist.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import httpx

from wiki_core.config import ClickHouseURL

PROMPT, MORE = "wiki-events :) ", "            -> "


class Console:
    def __init__(self, url: str, fmt: str | None = None, tty: bool | None = None) -> None:
        target = ClickHouseURL.parse(url)
        self.base = target.base
        self.auth = (target.user, target.password)
        self.database = target.database
        tty = sys.stdout.isatty() if tty is None else tty
        self.format = fmt or ("PrettyCompactMonoBlock" if tty else "TSVWithNames")
        self.session = f"wiki-events-sql-{uuid.uuid4().hex[:12]}"
        self.http = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._opened = False

    def run(self, sql: str) -> tuple[bool, str]:
        """(ok, text): the result in the console's format, or ClickHouse's error."""
        params = {
            "default_format": self.format,
            "session_id": self.session,
            "session_timeout": "3600",
        }
        if not self._opened:  # the URL's database once: a later USE then holds
            params["database"] = self.database
        try:
            reply = self.http.post(self.base, params=params, content=sql.encode(), auth=self.auth)
        except httpx.HTTPError as exc:
            return False, f"ClickHouse at {self.base} is unreachable: {exc}"
        if reply.status_code != 200:
            return False, reply.text.strip()
        self._opened = True
        # an error after the body started comes in-band (X-ClickHouse-Exception-Tag)
        if "__exception__" in reply.text and reply.headers.get("X-ClickHouse-Exception-Tag"):
            return False, reply.text.strip()
        return True, reply.text

    def close(self) -> None:
        self.http.close()


def statements(lines: Iterable[str]) -> Iterator[str]:
    """Whole statements from lines: each ends at a ``;`` that closes a line."""
    buffer: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not buffer and stripped.lower() in ("\\q", "exit", "quit", "exit;", "quit;"):
            return
        if not stripped and not buffer:
            continue
        buffer.append(line.rstrip("\n"))
        if stripped.endswith(";"):
            text = "\n".join(buffer).strip().rstrip(";").strip()
            buffer = []
            if text:
                yield text
    tail = "\n".join(buffer).strip().rstrip(";").strip()
    if tail:
        yield tail


def interactive(console: Console, history: Path | None, out: Callable[..., None]) -> int:
    """The read-eval-print loop; from a pipe it reads the statements without prompts.
    ``out(text, err=False)`` prints; ClickHouse's errors go with ``err=True``."""
    tty = sys.stdin.isatty()
    if tty:
        try:
            import readline

            if history is not None:
                history.parent.mkdir(parents=True, exist_ok=True)
                if history.exists():
                    readline.read_history_file(history)
        except (ImportError, OSError):
            history = None
        out(
            f"connected to {console.base} as {console.auth[0]}, database {console.database}. "
            "End statements with ;  \\q leaves."
        )

    def lines() -> Iterator[str]:
        if not tty:
            yield from sys.stdin
            return
        prompt = PROMPT
        while True:
            try:
                line = input(prompt)
            except EOFError:
                out("")
                return
            prompt = MORE if line.strip() and not line.strip().endswith(";") else PROMPT
            yield line

    failures = 0
    try:
        for sql in statements(lines()):
            started = time.perf_counter()
            ok, text = console.run(sql)
            if text.strip():
                out(text.rstrip("\n"), err=not ok)
            elif tty:
                out("Ok.")
            if tty:
                out(f"({time.perf_counter() - started:.3f} s)")
            failures += not ok
    except KeyboardInterrupt:
        out("")
    finally:
        if tty and history is not None:
            import readline

            try:
                readline.write_history_file(history)
            except OSError:
                pass
    return 1 if failures and not tty else 0

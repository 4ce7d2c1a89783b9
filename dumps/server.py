"""A local dumps site: serves a folder the way dumps.wikimedia.org serves ``other/``.

What it reproduces (``shared/data/dumps-format.md``, "Index HTML" and "Politeness"):

- ``GET /other/<path>``: the file, with ``Content-Length``, ``Last-Modified`` and an
  nginx-style ``ETag`` (``"<mtime hex>-<size hex>"``); a missing file is 404, as a
  not-yet-published hour is;
- a folder: nginx's autoindex page (folders first, then names in byte order; each
  entry padded to column 50, the date as ``DD-Mon-YYYY HH:MM``, the size right-aligned
  to 19; ``\\r\\n`` line ends);
- ``Range: bytes=a-b`` / ``bytes=a-`` (206 with ``Content-Range``, 416 past the end) and
  ``If-Range`` with the ETag or the Last-Modified date (a changed file is sent whole, 200);
- faults a test sets on :class:`Faults` while the server runs: ``slow`` (seconds of
  sleep per 64 KiB), ``cut_after`` (send that many bytes of a body, then drop the
  connection; ``cuts`` counts down how many responses are cut), ``ranges`` (False: the
  server ignores Range, as some mirrors do), ``etag`` (False: no ETag, only
  Last-Modified), ``requests`` and ``if_ranges`` (a log of what was asked).

A changed file is simply a file rewritten on disk: size, mtime and ETag follow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import html
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNK = 65536
PREFIX = "/other/"


@dataclass
class Faults:
    slow: float = 0.0
    cut_after: int | None = None
    cuts: int = 1
    ranges: bool = True
    etag: bool = True  # False: no ETag header (only Last-Modified), as some servers do
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    if_ranges: list[str | None] = field(default_factory=list)  # If-Range of each Range ask


def etag(path: Path) -> str:
    st = path.stat()
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def autoindex(url_path: str, folder: Path) -> str:
    """nginx's autoindex page for a folder."""
    head = (
        f"<html>\r\n<head><title>Index of {url_path}</title></head>\r\n"
        f'<body bgcolor="white">\r\n<h1>Index of {url_path}</h1><hr><pre>'
        '<a href="../">../</a>\r\n'
    )
    entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.encode()))
    rows = []
    for entry in entries:
        if entry.name.endswith(".tmp"):
            continue
        name = entry.name + ("/" if entry.is_dir() else "")
        shown = name if len(name) <= 50 else name[:47] + "..&gt;"
        st = entry.stat()
        when = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).strftime("%d-%b-%Y %H:%M")
        size = "-" if entry.is_dir() else str(st.st_size)
        pad = " " * (50 - len(name if len(name) <= 50 else name[:50]))
        rows.append(f'<a href="{html.escape(name)}">{shown}</a>{pad} {when} {size:>19}\r\n')
    return head + "".join(rows) + "</pre><hr></body>\r\n</html>\r\n"


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range, None when it is unusable."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].partition("-")
    if not first:
        if not last:
            return None
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class DumpsSite:
    def __init__(self, root: Path, faults: Faults | None = None) -> None:
        self.root = root.resolve()
        self.faults = faults or Faults()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.get, methods=["GET", "HEAD"])])

    async def get(self, request: Request) -> Response:
        url_path = request.url.path
        self.faults.requests.append((url_path, request.headers.get("range", "")))
        if not url_path.startswith(PREFIX.rstrip("/")):
            return PlainTextResponse("404 Not Found", status_code=404)
        rel = url_path[len(PREFIX) :]
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root) or not target.exists():
            return PlainTextResponse("404 Not Found", status_code=404)
        if target.is_dir():
            if not url_path.endswith("/"):
                return Response(status_code=301, headers={"Location": url_path + "/"})
            return HTMLResponse(autoindex(url_path, target))
        return self._file(request, target)

    def _file(self, request: Request, path: Path) -> Response:
        st = path.stat()
        size = st.st_size
        tag = etag(path) if self.faults.etag else None
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        headers = {"Last-Modified": modified, "Content-Type": "application/octet-stream"}
        if tag:
            headers["ETag"] = tag
        start, end, status = 0, size - 1, 200
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted:
            self.faults.if_ranges.append(if_range)
        # If-Range (RFC 9110 13.1.5): the range only if the ETag or the date still matches
        if wanted and self.faults.ranges and if_range in (None, tag, modified):
            headers["Accept-Ranges"] = "bytes"
            span = _parse_range(wanted, size)
            if span is None or span[0] >= size:
                headers["Content-Range"] = f"bytes */{size}"
                return Response(status_code=416, headers=headers)
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        elif self.faults.ranges:
            headers["Accept-Ranges"] = "bytes"
        headers["Content-Length"] = str(end - start + 1)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        cut = None
        if self.faults.cut_after is not None and self.faults.cuts > 0:
            self.faults.cuts -= 1
            cut = self.faults.cut_after
        return StreamingResponse(
            self._body(path, start, end, cut), status_code=status, headers=headers
        )

    async def _body(
        self, path: Path, start: int, end: int, cut: int | None
    ) -> AsyncIterator[bytes]:
        sent = 0
        with path.open("rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                data = f.read(min(CHUNK, left))
                if not data:
                    break
                if cut is not None and sent + len(data) > cut:
                    yield data[: cut - sent]
                    # dropping the connection short of Content-Length, as a broken link does
                    raise ConnectionAbortedError(f"fault: cut after {cut} bytes")
                left -= len(data)
                sent += len(data)
                yield data
                if self.faults.slow:
                    await asyncio.sleep(self.faults.slow)


class ServerThread:
    """The site under uvicorn in a background thread (tests, the benchmark)."""

    def __init__(self, site: DumpsSite, port: int, host: str = "127.0.0.1") -> None:
        config = uvicorn.Config(
            site.app(), host=host, port=port, log_level="critical", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://{host}:{port}{PREFIX}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the dumps server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

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
  Last-Modified), ``requests`` and ``if_ranges`` (a log of what was asked);
- other servers' index pages, as mirrors serve them (``listing``): ``apache`` (mod_autoindex's
  table: sizes rounded to K/M/G, dates in the server's local time), ``python`` (Python's
  http.server: names only), ``plain`` (bare links, single-quoted, absolute paths), ``huge``
  (nginx's, padded to 40 MiB); ``head``
  False answers HEAD with 405, as some servers do;
- a hostile site's faults: ``endless`` (a file's body goes on after its bytes, its last
  line again and again, with no Content-Length), ``redirect`` (every file asked without
  a query answered with a 302 to that Location).

A changed file is simply a file rewritten on disk: size, mtime and ETag follow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import html
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
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
    listing: str = "nginx"  # nginx, apache, python, plain
    head: bool = True
    endless: bool = False
    redirect: str | None = None


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


def _files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if not p.name.endswith(".tmp")),
        key=lambda p: (not p.is_dir(), p.name.encode()),
    )


def _rounded(size: int) -> str:
    """Apache's size column: 512, 4.5K, 45M."""
    if size < 1024:
        return str(size)
    value, units = size / 1024, "KMG"
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.1f}{units[0]}" if value < 10 else f"{value:.0f}{units[0]}"


def apache_index(url_path: str, folder: Path) -> str:
    """Apache 2.4's mod_autoindex (FancyIndexing, HTMLTable) in a UTC+2 server's time."""
    local = dt.timezone(dt.timedelta(hours=2))
    rows = [
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        f'<td><a href="{html.escape(url_path.rstrip("/").rsplit("/", 1)[0])}/">Parent Directory</a>'
        '</td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>'
    ]
    for entry in _files(folder):
        st = entry.stat()
        name = entry.name + ("/" if entry.is_dir() else "")
        when = dt.datetime.fromtimestamp(st.st_mtime, local).strftime("%Y-%m-%d %H:%M")
        size = "  - " if entry.is_dir() else _rounded(st.st_size)
        rows.append(
            '<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td>'
            f'<td><a href="{html.escape(name)}">{html.escape(name)}</a></td>'
            f'<td align="right">{when}  </td><td align="right">{size:>4}</td><td>&nbsp;</td></tr>'
        )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {url_path}</title>\n </head>\n <body>\n<h1>Index of {url_path}</h1>\n"
        '  <table>\n   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        + "\n".join(rows)
        + "\n</table>\n<address>Apache/2.4.58 (Ubuntu) Server</address>\n</body></html>\n"
    )


def python_index(url_path: str, folder: Path) -> str:
    """Python's ``http.server`` directory listing: names only."""
    items = "".join(
        f'<li><a href="{urllib.parse.quote(p.name + ("/" if p.is_dir() else ""))}">'
        f"{html.escape(p.name)}</a></li>\n"
        for p in _files(folder)
    )
    return (
        '<!DOCTYPE HTML>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Directory listing for {url_path}</title>\n</head>\n<body>\n"
        f"<h1>Directory listing for {url_path}</h1>\n<hr>\n<ul>\n{items}</ul>\n<hr>\n"
        "</body>\n</html>\n"
    )


def plain_index(url_path: str, folder: Path) -> str:
    """A hand-made page: links with absolute paths, single-quoted, nothing else."""
    return "".join(
        f"<a href='{url_path}{p.name}'>{p.name}</a><br>\n" for p in _files(folder) if p.is_file()
    )


def huge_index(url_path: str, folder: Path) -> str:
    """nginx's page grown past any real index (40 MiB of padding after it)."""
    return autoindex(url_path, folder) + "<!--" + "x" * (40 << 20) + "-->"


LISTINGS = {
    "huge": huge_index,
    "nginx": autoindex,
    "apache": apache_index,
    "python": python_index,
    "plain": plain_index,
}


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
            return HTMLResponse(LISTINGS[self.faults.listing](url_path, target))
        return self._file(request, target)

    def _file(self, request: Request, path: Path) -> Response:
        if request.method == "HEAD" and not self.faults.head:
            return Response(status_code=405, headers={"Allow": "GET"})
        if self.faults.redirect is not None and not request.url.query:
            return Response(status_code=302, headers={"Location": self.faults.redirect})
        if self.faults.endless:
            return StreamingResponse(self._endless(path))
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

    async def _endless(self, path: Path) -> AsyncIterator[bytes]:
        """Chunked, no Content-Length: the file's bytes, then its last line for ever
        (until the client goes)."""
        data = path.read_bytes()
        yield data
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
        block = last * max(1, CHUNK // len(last))
        while True:
            yield block
            await asyncio.sleep(0)


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


@dataclass
class Site:
    """A running local dumps site: its folder, its faults, its ``DUMPS_URL``."""

    root: Path
    faults: Faults
    url: str


@contextmanager
def serve(root: Path) -> Iterator[Site]:
    """The site over ``root`` (made if missing) on a free port, for a ``with`` block."""
    from .ports import free_port

    root.mkdir(parents=True, exist_ok=True)
    faults = Faults()
    with ServerThread(DumpsSite(root, faults), free_port()) as server:
        yield Site(root, faults, server.url)

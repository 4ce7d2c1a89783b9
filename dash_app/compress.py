"""Compressed responses, by the app itself: whether gunicorn runs it bare or behind a
proxy that does not compress, the browser gets plotly.js (4.8 MB) as ~1.1 MB.

Text answers (scripts, styles, the callbacks' JSON, the page) are sent with brotli when
the browser accepts it, else gzip. The static files (Dash's component suites and the
assets, the same bytes for every visitor) are compressed once per process and kept;
the callbacks' answers are compressed as they go, at a quick level.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import brotli

TYPES = {
    "application/javascript",
    "text/javascript",
    "text/css",
    "application/json",
    "text/html",
    "text/plain",
    "text/csv",
    "image/svg+xml",
}
MIN_BYTES = 1024
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/")
CACHED = 64  # static files kept compressed (a page loads ~20)


class Compressor:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def install(self, server: Any) -> None:
        from flask import Response, request

        @server.after_request
        def compress(response: Response) -> Response:
            encoding = _pick(request.headers.get("Accept-Encoding", ""))
            if (
                not encoding
                or response.status_code != 200
                or response.mimetype not in TYPES
                or "Content-Encoding" in response.headers
            ):
                return response
            response.direct_passthrough = False  # a file sent from disk: read it here
            data = response.get_data()
            if len(data) < MIN_BYTES:
                return response
            static = request.path.startswith(STATIC_PREFIXES)
            body = self._static(data, encoding) if static else _encode(data, encoding, 4)
            response.set_data(body)
            response.headers["Content-Encoding"] = encoding
            response.headers["Content-Length"] = str(len(body))
            response.vary.add("Accept-Encoding")
            return response

    def _static(self, data: bytes, encoding: str) -> bytes:
        key = (hashlib.blake2b(data, digest_size=16).hexdigest(), encoding)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        body = _encode(data, encoding, 6)
        with self._lock:
            self._kept[key] = body
            while len(self._kept) > CACHED:
                self._kept.popitem(last=False)
        return body


def _pick(accepted: str) -> str:
    names = {part.split(";")[0].strip().lower() for part in accepted.split(",")}
    return "br" if "br" in names else "gzip" if "gzip" in names else ""


def _encode(data: bytes, encoding: str, level: int) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(data, quality=level))
    return gzip.compress(data, compresslevel=level)

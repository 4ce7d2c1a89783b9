"""HTTP body compression the way ClickHouse's HTTP interface does it.

Requests: ``Content-Encoding`` gzip, deflate, br, zstd or lz4 (frame), decoded as the
body streams in, a bounded piece at a time (a decompression bomb never expands in
memory), and a stream cut before its end marker is an error, never a shorter body.
Responses: compressed when ``enable_http_compression=1`` and the
client's ``Accept-Encoding`` names one of the same methods (in the client's order).
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import lz4.frame
import zstandard

from .errors import CANNOT_DECOMPRESS, ClickHouseError

METHODS = ("gzip", "deflate", "br", "zstd", "lz4")


class Decoder(Protocol):
    """A request body decoder with bounded output: ``push`` compressed bytes, ``pull``
    at most about ``limit`` decoded bytes at a time (b"" once the input pushed so far
    is used up), ``finish`` at the end of the body raises if the stream was cut."""

    def push(self, data: bytes) -> None: ...

    def pull(self, limit: int) -> bytes: ...

    def finish(self) -> None: ...


def _truncated(method: str) -> ClickHouseError:
    return ClickHouseError(
        CANNOT_DECOMPRESS,
        f"Cannot decompress {method} request body: the compressed stream ends before "
        "its end marker (the body was cut)",
    )


class _Zlib:
    def __init__(self, wbits: int, method: str) -> None:
        self._wbits = wbits
        self._method = method
        self._obj = zlib.decompressobj(wbits)
        self._pending = b""
        self._started = False  # bytes of a stream have been consumed
        self._probed = wbits != zlib.MAX_WBITS

    def push(self, data: bytes) -> None:
        self._pending += data

    def pull(self, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit and self._pending:
            if self._obj.eof:
                # gzip bodies may hold several members; after a zlib stream, nothing
                if self._wbits == zlib.MAX_WBITS or self._wbits < 0:
                    self._pending = b""
                    break
                self._obj = zlib.decompressobj(self._wbits)
            data, self._pending = self._pending, b""
            if not self._probed:
                # "deflate" is zlib-wrapped per RFC 9110, but some clients send raw deflate
                self._probed = True
                try:
                    out += self._obj.decompress(data, limit - len(out))
                except zlib.error:
                    self._wbits = -zlib.MAX_WBITS
                    self._obj = zlib.decompressobj(self._wbits)
                    out += self._obj.decompress(data, limit - len(out))
            else:
                out += self._obj.decompress(data, limit - len(out))
            self._started = True
            self._pending = self._obj.unused_data if self._obj.eof else self._obj.unconsumed_tail
        return bytes(out)

    def finish(self) -> None:
        if self._started and not self._obj.eof:
            raise _truncated(self._method)


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()
        self._pending = b""
        self._started = False

    def push(self, data: bytes) -> None:
        self._pending += data

    def pull(self, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit:
            if not self._obj.can_accept_more_data():
                chunk = self._obj.process(b"", output_buffer_limit=limit - len(out))
            elif self._pending:
                data, self._pending = self._pending, b""
                self._started = True
                chunk = self._obj.process(data, output_buffer_limit=limit - len(out))
            else:
                break
            out += chunk
            if not chunk and self._obj.can_accept_more_data() and not self._pending:
                break
        return bytes(out)

    def finish(self) -> None:
        if self._started and not self._obj.is_finished():
            raise _truncated("br")


# One zstd block (at most 128 KiB decoded) takes at least ~4 bytes of input, so a piece
# of this many input bytes decodes to at most ~2 MiB: a bomb's output stays bounded.
_ZSTD_PIECE = 64


class _Zstd:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""
        self._pos = 0
        self._in_frame = False

    def push(self, data: bytes) -> None:
        self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def pull(self, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit and self._pos < len(self._buf):
            piece = self._buf[self._pos : self._pos + _ZSTD_PIECE]
            self._pos += len(piece)
            self._in_frame = True
            out += self._obj.decompress(piece)
            if self._obj.eof:
                # frames may be concatenated
                rest = self._obj.unused_data
                self._obj = zstandard.ZstdDecompressor().decompressobj()
                self._in_frame = False
                self._buf = rest + self._buf[self._pos :]
                self._pos = 0
        return bytes(out)

    def finish(self) -> None:
        if self._in_frame:
            raise _truncated("zstd")


class _Lz4:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameDecompressor()
        self._pending = b""
        self._in_frame = False

    def push(self, data: bytes) -> None:
        self._pending += data

    def pull(self, limit: int) -> bytes:
        out = bytearray()
        while len(out) < limit:
            if self._obj.needs_input:
                if not self._pending:
                    break
                data, self._pending = self._pending, b""
                self._in_frame = True
                out += self._obj.decompress(data, max_length=limit - len(out))
            else:
                out += self._obj.decompress(b"", max_length=limit - len(out))
            if self._obj.eof:
                # lz4 frames may be concatenated
                self._pending = (self._obj.unused_data or b"") + self._pending
                self._obj = lz4.frame.LZ4FrameDecompressor()
                self._in_frame = False
        return bytes(out)

    def finish(self) -> None:
        if self._in_frame:
            raise _truncated("lz4")


def decoder(content_encoding: str | None) -> Decoder | None:
    """The decoder for a Content-Encoding; None for an uncompressed body."""
    method = (content_encoding or "").strip().lower()
    if method in ("", "identity"):
        return None
    if method in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS, "gzip")
    if method == "deflate":
        return _Zlib(zlib.MAX_WBITS, "deflate")
    if method == "br":
        return _Brotli()
    if method == "zstd":
        return _Zstd()
    if method == "lz4":
        return _Lz4()
    raise ClickHouseError(
        CANNOT_DECOMPRESS,
        f"Unknown HTTP Content-Encoding: {content_encoding}. Supported: {', '.join(METHODS)}",
    )


def decode_error(method: str, exc: Exception) -> ClickHouseError:
    return ClickHouseError(CANNOT_DECOMPRESS, f"Cannot decompress {method} request body: {exc}")


class Encoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _ZlibEncoder:
    def __init__(self, wbits: int, level: int) -> None:
        self._obj = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def feed(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def finish(self) -> bytes:
        return self._obj.flush()


class _BrotliEncoder:
    def __init__(self, level: int) -> None:
        self._obj = brotli.Compressor(quality=min(level, 11))

    def feed(self, data: bytes) -> bytes:
        return bytes(self._obj.process(data))

    def finish(self) -> bytes:
        return bytes(self._obj.finish())


class _ZstdEncoder:
    def __init__(self, level: int) -> None:
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def feed(self, data: bytes) -> bytes:
        return bytes(self._obj.compress(data))

    def finish(self) -> bytes:
        return bytes(self._obj.flush())


class _Lz4Encoder:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameCompressor()
        self._header = self._obj.begin()

    def feed(self, data: bytes) -> bytes:
        out = self._header + self._obj.compress(data)
        self._header = b""
        return out

    def finish(self) -> bytes:
        return self._header + self._obj.flush()


def choose_encoding(accept_encoding: str | None) -> str | None:
    """The first method the client accepts that we speak (q=0 excluded)."""
    for part in (accept_encoding or "").split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if "q=0" in params.replace(" ", "") and "q=0." not in params.replace(" ", ""):
            continue
        if name in METHODS:
            return name
    return None


def encoder(method: str, level: int = 3) -> Encoder:
    if method == "gzip":
        return _ZlibEncoder(16 + zlib.MAX_WBITS, level)
    if method == "deflate":
        return _ZlibEncoder(zlib.MAX_WBITS, level)
    if method == "br":
        return _BrotliEncoder(level)
    if method == "zstd":
        return _ZstdEncoder(level)
    return _Lz4Encoder()

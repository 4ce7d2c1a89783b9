"""HTTP body compression the way ClickHouse's HTTP interface does it.

Requests: ``Content-Encoding`` gzip, deflate, br, zstd or lz4 (frame), decoded as the
body streams in. Responses: compressed when ``enable_http_compression=1`` and the
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
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes) -> bytes:
        if not self._started and self._wbits == zlib.MAX_WBITS:
            # "deflate" is zlib-wrapped per RFC 9110, but some clients send raw deflate.
            self._started = True
            try:
                return self._obj.decompress(data)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._started = True
        return self._obj.decompress(data)

    def finish(self) -> bytes:
        return self._obj.flush()


class _Brotli:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        return bytes(self._obj.process(data))

    def finish(self) -> bytes:
        return b""


class _Zstd:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> bytes:
        return bytes(self._obj.decompress(data))

    def finish(self) -> bytes:
        return b""


class _Lz4:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameDecompressor()
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        # lz4 frames may be concatenated; start a new decompressor after each one ends.
        out = bytearray()
        data = self._pending + data
        self._pending = b""
        while data:
            out += self._obj.decompress(data)
            if self._obj.eof:
                data = self._obj.unused_data
                self._obj = lz4.frame.LZ4FrameDecompressor()
            else:
                break
        return bytes(out)

    def finish(self) -> bytes:
        return b""


def decoder(content_encoding: str | None) -> Decoder:
    method = (content_encoding or "").strip().lower()
    if method in ("", "identity"):
        return _Identity()
    if method in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if method == "deflate":
        return _Zlib(zlib.MAX_WBITS)
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

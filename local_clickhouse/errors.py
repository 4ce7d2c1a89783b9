"""ClickHouse errors as a real server reports them over HTTP.

The engine raises ``Code: N. DB::Exception: message. (NAME)``; the HTTP layer turns
that into the status code ClickHouse's ``exceptionCodeToHTTPStatus.cpp`` gives the
code, the ``X-ClickHouse-Exception-Code`` header and the same text as the body.
Errors raised by this server itself (authentication, sessions, GET is read-only)
use the same codes and wording as ClickHouse.
"""

from __future__ import annotations

import re

# Codes this server raises itself, with ClickHouse's names.
BAD_ARGUMENTS = 36
NOT_IMPLEMENTED = 48
UNKNOWN_FORMAT = 73
READONLY = 164
UNKNOWN_USER = 192
REQUIRED_PASSWORD = 194
SESSION_NOT_FOUND = 372
SESSION_IS_LOCKED = 373
QUERY_IS_TOO_LARGE = 229
TOO_LARGE_SIZE_COMPRESSED = 39
CANNOT_READ_ALL_DATA = 33
SOCKET_TIMEOUT = 209
UNKNOWN_EXCEPTION = 1002
AUTHENTICATION_FAILED = 516
HTTP_LENGTH_REQUIRED = 381
INVALID_SESSION_TIMEOUT = 374
CANNOT_DECOMPRESS = 271
ACCESS_DENIED = 497
DATABASE_ACCESS_DENIED = 291
INTO_OUTFILE_NOT_ALLOWED = 358
SYNTAX_ERROR = 62
UNACCEPTABLE_URL = 481

NAMES = {
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    READONLY: "READONLY",
    UNKNOWN_USER: "UNKNOWN_USER",
    REQUIRED_PASSWORD: "REQUIRED_PASSWORD",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    QUERY_IS_TOO_LARGE: "QUERY_IS_TOO_LARGE",
    TOO_LARGE_SIZE_COMPRESSED: "TOO_LARGE_SIZE_COMPRESSED",
    CANNOT_READ_ALL_DATA: "CANNOT_READ_ALL_DATA",
    SOCKET_TIMEOUT: "SOCKET_TIMEOUT",
    UNKNOWN_EXCEPTION: "UNKNOWN_EXCEPTION",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    HTTP_LENGTH_REQUIRED: "HTTP_LENGTH_REQUIRED",
    INVALID_SESSION_TIMEOUT: "INVALID_SESSION_TIMEOUT",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    ACCESS_DENIED: "ACCESS_DENIED",
    DATABASE_ACCESS_DENIED: "DATABASE_ACCESS_DENIED",
    INTO_OUTFILE_NOT_ALLOWED: "INTO_OUTFILE_NOT_ALLOWED",
    SYNTAX_ERROR: "SYNTAX_ERROR",
}

# ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, code by code.
_UNAUTHORIZED = {REQUIRED_PASSWORD}
_FORBIDDEN = {UNKNOWN_USER, 193, AUTHENTICATION_FAILED, 512, 497}
_BAD_REQUEST = {
    36,
    427,
    6,
    25,
    26,
    38,
    41,
    72,
    441,
    676,
    677,
    27,
    376,
    15,
    44,
    39,
    167,
    168,
    223,
    62,
    117,
    53,
    321,
}
_NOT_FOUND = {60, 46, 47, 50, 56, 81, 115, 58, 63, 73, 336, 82, 511}
_STATUS_BY_CODE: dict[int, int] = {
    **{c: 401 for c in _UNAUTHORIZED},
    **{c: 403 for c in _FORBIDDEN},
    **{c: 400 for c in _BAD_REQUEST},
    **{c: 404 for c in _NOT_FOUND},
    QUERY_IS_TOO_LARGE: 413,
    NOT_IMPLEMENTED: 501,
    209: 503,  # SOCKET_TIMEOUT
    76: 503,  # CANNOT_OPEN_FILE
    439: 503,  # CANNOT_SCHEDULE_TASK
    HTTP_LENGTH_REQUIRED: 411,
    159: 408,  # TIMEOUT_EXCEEDED
}

_ENGINE_MESSAGE = re.compile(r"Code: (\d+)\. DB::Exception: ", re.S)
_TRAILING_NAME = re.compile(r"\(([A-Z0-9_]+)\)\s*$")


def http_status(code: int) -> int:
    return _STATUS_BY_CODE.get(code, 500)


class ClickHouseError(Exception):
    """An error with a ClickHouse code; ``str()`` is the text a real server sends."""

    def __init__(self, code: int, message: str, name: str | None = None) -> None:
        self.code = code
        self.message = message.rstrip()
        self.name = name or NAMES.get(code, "")
        super().__init__(self.text())

    def text(self) -> str:
        suffix = (
            f" ({self.name})" if self.name and not self.message.endswith(f"({self.name})") else ""
        )
        return f"Code: {self.code}. DB::Exception: {self.message}{suffix}"

    @property
    def status(self) -> int:
        return http_status(self.code)

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Parse the engine's exception text; anything unrecognised is UNKNOWN_EXCEPTION."""
        if isinstance(exc, ClickHouseError):
            return exc
        raw = str(exc).strip()
        # chDB sometimes nests the prefix ("Code: 73. DB::Exception: Code: 73. ...").
        found = list(_ENGINE_MESSAGE.finditer(raw))
        if not found:
            return cls(UNKNOWN_EXCEPTION, raw or type(exc).__name__)
        code = int(found[0].group(1))
        message = raw[found[-1].end() :]
        name_match = _TRAILING_NAME.search(message)
        name = name_match.group(1) if name_match else NAMES.get(code, "")
        if name_match:
            message = message[: name_match.start()].rstrip()
        return cls(code, message, name)

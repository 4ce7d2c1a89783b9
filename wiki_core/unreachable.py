"""One plain sentence for a service that cannot be reached.

Clients wrap a refused connection in layers (urllib3's pool, clickhouse-connect's
``OperationalError``, pika's ``AMQPConnectionError``, httpx's ``ConnectError``); a user
needs the cause in words, where, and what to run. ``cause`` digs the cause out of any of
them; ``sentence`` puts it together.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

# (substring of the wrapped error's text, what it means), first match wins
_CAUSES = [
    ("connection refused", "connection refused: nothing listens there"),
    ("errno 111", "connection refused: nothing listens there"),
    ("name or service not known", "the host name does not resolve (no network, or a typo?)"),
    ("temporary failure in name resolution", "the host name does not resolve (no network?)"),
    ("nodename nor servname", "the host name does not resolve (no network, or a typo?)"),
    ("no route to host", "no route to the host"),
    ("network is unreachable", "the network is unreachable"),
    ("timed out", "no answer in time"),
    ("timeout", "no answer in time"),
    ("certificate verify failed", "its TLS certificate is not trusted"),
    ("authentication", "the user name or password was refused"),
    ("access_refused", "the user name or password was refused"),
    ("connection reset", "the connection was reset"),
]

# libraries that log their own retries of the same failure, after ours said it once
# (urllib3's child by name: clickhouse-connect resets the parent's level when imported)
NOISY_LOGGERS = (
    "urllib3",
    "urllib3.connectionpool",
    "clickhouse_connect",
    "pika",
    "httpx",
    "httpcore",
)


def cause(exc: BaseException) -> str:
    """The failure in words, from ``exc`` and the exceptions it wraps."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(f"{type(e).__name__} {e!r} {e}" for e in seen).lower()
    for needle, meaning in _CAUSES:
        if needle in text:
            return meaning
    first = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def without_password(url: str) -> str:
    """``url`` with any password shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def sentence(what: str, url: str, exc: BaseException, remedy: str) -> str:
    """``<what> is not answering at <url> (<cause>): <remedy>``."""
    return f"{what} is not answering at {without_password(url)} ({cause(exc)}): {remedy}"


def quiet_clients() -> None:
    """Silence the client libraries' own retry warnings (one line of ours says it)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)

"""Who a request is: its credentials checked against what ClickHouse stored for the user
(``SHOW CREATE USER``, secrets shown, read by access.py's probe), and the address it
comes from against the user's ``HOST`` clause (``system.users``). The engine cannot do
either here: it logs every connection in as its own ``default``."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import ipaddress
import re
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Credential:
    """One way a user may authenticate, as ClickHouse stored it."""

    kind: str  # no_password, plaintext_password, sha256_hash, double_sha1_hash
    secret: str = ""  # the password, or the hash in hex
    salt: str = ""

    def check(self, password: str) -> bool:
        given = password.encode()
        if self.kind == "no_password":
            return True
        if self.kind == "plaintext_password":
            return hmac.compare_digest(given, self.secret.encode())
        if self.kind == "sha256_hash":
            digest = hashlib.sha256(given + self.salt.encode()).hexdigest()
            return hmac.compare_digest(digest, self.secret.lower())
        if self.kind == "double_sha1_hash":
            digest = hashlib.sha1(hashlib.sha1(given).digest()).hexdigest()
            return hmac.compare_digest(digest, self.secret.lower())
        return False

    @property
    def needs_password(self) -> bool:
        return self.kind != "no_password" and not (
            self.kind == "plaintext_password" and self.secret == ""
        )


SUPPORTED_AUTH = ("no_password", "plaintext_password", "sha256_hash", "double_sha1_hash")


@dataclass(frozen=True)
class Hosts:
    """Where a user may connect from: ClickHouse's ``HOST`` clause (system.users)."""

    ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: tuple[str, ...] = ()
    regexps: tuple[str, ...] = ()
    likes: tuple[str, ...] = ()

    def allows(self, address: str | None) -> bool:
        if address is None:  # a Unix socket or a test transport: the machine itself
            address = "127.0.0.1"
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv4Address):
            candidates.append(ipaddress.IPv6Address(f"::ffff:{ip}"))
        for net in self.ips:
            if any(c.version == net.version and c in net for c in candidates):
                return True
        for name in self.names:
            if name == "localhost" and ip.is_loopback:
                return True
            if ip in _resolve(name):
                return True
        if self.regexps or self.likes:
            host = _reverse(str(ip))
            if host and any(re.search(p, host) for p in self.regexps):
                return True
            if host and any(_like(p, host) for p in self.likes):
                return True
        return False


@functools.lru_cache(maxsize=256)
def _resolve(name: str) -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return frozenset()
    return frozenset(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos)


@functools.lru_cache(maxsize=256)
def _reverse(address: str) -> str:
    try:
        return socket.gethostbyaddr(address)[0]
    except OSError:
        return ""


def _like(pattern: str, text: str) -> bool:
    translated = pattern.replace("%", "*").replace("_", "?")
    return fnmatch.fnmatchcase(text, translated)


# A SQL literal or identifier, or a word, or a comma.
_LEX = re.compile(
    r"\s*(?:'(?P<str>(?:[^'\\]|\\.)*)'|`(?P<ident>(?:[^`\\]|\\.)*)`|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[,()=]))",
    re.S,
)
_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), body)


def _lex(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _LEX.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group("str") is not None:
            out.append(("str", _unescape(m.group("str"))))
        elif m.group("ident") is not None:
            out.append(("ident", _unescape(m.group("ident"))))
        elif m.group("word") is not None:
            out.append(("word", m.group("word").upper()))
        else:
            out.append(("punct", m.group("punct")))
    return out


def parse_identification(create_user: str) -> tuple[tuple[Credential, ...], str]:
    """The credentials of ``SHOW CREATE USER`` (secrets shown), and the name of an
    authentication this server cannot check ("" if none)."""
    tokens = _lex(create_user)
    words = [v for k, v in tokens]
    if "NOT" in words and "IDENTIFIED" in words:
        i = words.index("NOT")
        if i + 1 < len(words) and words[i + 1] == "IDENTIFIED":
            return (Credential("no_password"),), ""
    if "IDENTIFIED" not in words:
        return (Credential("no_password"),), ""
    i = words.index("IDENTIFIED") + 1
    credentials: list[Credential] = []
    unsupported = ""
    if i < len(tokens) and tokens[i] == ("word", "WITH"):
        i += 1
    while i < len(tokens):
        kind = tokens[i][1].lower()
        i += 1
        secret = salt = ""
        while i < len(tokens) and tokens[i][0] == "word" and tokens[i][1] in ("BY", "SALT"):
            keyword = tokens[i][1]
            value = tokens[i + 1][1] if i + 1 < len(tokens) else ""
            if keyword == "BY":
                secret = value
            else:
                salt = value
            i += 2
        if kind in SUPPORTED_AUTH:
            credentials.append(Credential(kind, secret, salt))
        else:
            unsupported = unsupported or kind
        if i < len(tokens) and tokens[i] == ("punct", ","):
            i += 1
            if i < len(tokens) and tokens[i] == ("word", "IDENTIFIED"):
                i += 2  # ", IDENTIFIED WITH" in some renderings
            continue
        break
    return tuple(credentials), "" if credentials else unsupported

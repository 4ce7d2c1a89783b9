"""Just enough lexing of SQL text to do what ClickHouse's HTTP handler does before parsing.

Two jobs: find where an ``INSERT ... FORMAT X`` statement ends and its data begins
(the data may follow in the same body), and find a ``FORMAT`` clause that names the
output format of a query. Quoted strings, quoted identifiers and comments are skipped,
so a ``FORMAT`` inside a literal never counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, upper-cased word) for every bare word outside literals and comments.

    Lazy, so that splitting an INSERT stops at its FORMAT clause and never lexes the data.
    """
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif text.startswith("--", i) or text.startswith("#", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif (m := _WORD.match(text, i)) is not None:
            yield m.start(), m.end(), m.group(0).upper()
            i = m.end()
        else:
            i += 1


def tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, upper-cased word) of every bare word outside literals and comments."""
    return _tokens(text)


@dataclass(frozen=True)
class InsertSplit:
    statement: str  # "INSERT INTO t (a, b) [SETTINGS ...]" without the FORMAT clause
    format: str
    data_offset: int  # where the data starts in the text that was split


def split_insert(text: str) -> InsertSplit | None:
    """For ``INSERT ... FORMAT Name <data>`` the statement, the format and the data offset.

    ``None`` when the text is not an INSERT with a FORMAT clause (``INSERT ... VALUES``
    and ``INSERT ... SELECT`` run as ordinary queries). As in ClickHouse, the data
    starts after the format name, spaces and tabs, and at most one line break.
    """
    tokens = _tokens(text)
    first = next(tokens, None)
    if first is None or first[2] != "INSERT":
        return None
    for start, end, word in tokens:
        if word in ("SELECT", "WITH", "VALUES"):
            return None
        if word == "FORMAT":
            name = next(tokens, None)
            if name is None:
                return None
            fmt_start, fmt_end, _ = name
            if text[end:fmt_start].strip():
                return None
            pos = fmt_end
            while pos < len(text) and text[pos] in " \t\f":
                pos += 1
            if text.startswith("\r\n", pos):
                pos += 2
            elif pos < len(text) and text[pos] in "\r\n":
                pos += 1
            statement = text[:start].rstrip()
            return InsertSplit(statement, text[fmt_start:fmt_end], pos)
    return None


def output_format(query: str) -> str | None:
    """The format named by the last top-level ``FORMAT`` clause of a query, if any."""
    tokens = list(_tokens(query))
    if tokens and tokens[0][2] == "INSERT":
        return None
    for idx in range(len(tokens) - 2, -1, -1):
        if tokens[idx][2] == "FORMAT":
            start, end, _ = tokens[idx + 1]
            if "(" in query[tokens[idx][1] : start]:
                continue  # the format() table function: format(name, ...)
            return query[start:end]
    return None

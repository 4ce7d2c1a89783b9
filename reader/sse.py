"""Server-Sent Events parsing, per the WHATWG HTML specification (section 9.2.6).

Incremental: feed bytes as they arrive, in any chunking, and get whole events back.
Lines end in CRLF, LF or CR (a CR at the end of one chunk may be the first half of a
CRLF in the next); ``data:`` lines join with ``\\n``; comments (``:``) are counted,
not returned; ``id:`` containing NUL is ignored; ``retry:`` takes digits only. The
last event id persists across events, as the specification says.

An event's data stays the bytes it arrived as (``raw``); ``data`` decodes them. The
reader hands the bytes on as they are, so nothing is decoded and encoded again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    raw: bytes  # the data field's bytes; for an oversized event, its first bytes
    event: str = "message"
    id: str | None = None  # the last event id in force when this event was dispatched
    size: int = 0  # bytes of data (of the whole line, when oversized), for size limits

    @property
    def data(self) -> str:
        """The data as text (invalid UTF-8 replaced, as the specification decodes)."""
        return self.raw.decode("utf-8", errors="replace")


OVERSIZED = "oversized"
OVERSIZED_SAMPLE = 4096


class SSEParser:
    def __init__(self, max_line: int | None = None) -> None:
        self._buf = bytearray()
        self._pending_cr = False
        self._data: list[bytes] = []
        self._event = ""
        self._has_data = False
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.comments = 0
        self.oversized = 0
        self._max_line = max_line
        self._skipping = False  # inside an oversized line, dropping bytes until its end
        self._skipped_prefix = b""
        self._skipped_size = 0
        self._ignore_until_blank = False  # the rest of an event whose line was too long

    def feed(self, chunk: bytes) -> list[Event]:
        if self._pending_cr or self._skipping or b"\r" in chunk:
            return self._feed(chunk)
        # The usual case, LF line ends only: split in one call instead of searching line
        # by line (12 -> 5 us an event). A line over the limit goes to the general path
        # from where it starts; _buf still holds the part of it from earlier chunks.
        events: list[Event] = []
        limit = self._max_line
        lines = chunk.split(b"\n")
        tail = lines.pop()
        start = 0
        for part in lines:
            if limit is not None and len(self._buf) + len(part) > limit:
                return events + self._feed(chunk[start:])
            start += len(part) + 1
            if self._buf:
                self._buf += part
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = part
            event = self._line(line)
            if event is not None:
                events.append(event)
        if limit is not None and len(self._buf) + len(tail) > limit:
            return events + self._feed(chunk[start:])
        self._buf += tail
        return events

    def _feed(self, chunk: bytes) -> list[Event]:
        """Any line ends (CR, LF, CRLF, split across chunks) and over-long lines."""
        events: list[Event] = []
        i = 0
        n = len(chunk)
        if self._pending_cr and n and chunk[0:1] == b"\n":
            i = 1  # the LF of a CRLF split across chunks
        self._pending_cr = False
        while i < n:
            cr = chunk.find(b"\r", i)
            lf = chunk.find(b"\n", i)
            ends = [p for p in (cr, lf) if p != -1]
            if not ends:
                self._take(chunk[i:])
                break
            end = min(ends)
            self._take(chunk[i:end])
            if chunk[end : end + 1] == b"\r":
                if end + 1 < n:
                    i = end + 2 if chunk[end + 1 : end + 2] == b"\n" else end + 1
                else:
                    self._pending_cr = True
                    i = end + 1
            else:
                i = end + 1
            if self._skipping:
                events.append(self._oversized_event())
                continue
            line = bytes(self._buf)
            self._buf.clear()
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _take(self, part: bytes) -> None:
        if self._skipping:
            self._skipped_size += len(part)
            return
        self._buf += part
        if self._max_line is not None and len(self._buf) > self._max_line:
            # Keep a sample for the quarantine and drop the rest as it streams by.
            self._skipping = True
            self._skipped_prefix = bytes(self._buf[:OVERSIZED_SAMPLE])
            self._skipped_size = len(self._buf)
            self._buf.clear()

    def _oversized_event(self) -> Event:
        """An over-long line, returned as an ``oversized`` event with its first bytes.

        The event being built is dropped with it: its data is incomplete."""
        self.oversized += 1
        event = Event(
            raw=self._skipped_prefix,
            event=OVERSIZED,
            id=self.last_id,
            size=self._skipped_size,
        )
        self._skipping = False
        self._skipped_prefix = b""
        self._skipped_size = 0
        self._data.clear()
        self._has_data = False
        self._event = ""
        self._ignore_until_blank = True
        return event

    def _line(self, line: bytes) -> Event | None:
        if not line:
            if self._ignore_until_blank:
                self._ignore_until_blank = False
                self._data.clear()
                self._has_data = False
                self._event = ""
                return None
            return self._dispatch()
        if self._ignore_until_blank:
            if line.startswith(b"id:"):
                self._line_field(line)
            return None
        if line.startswith(b":"):
            self.comments += 1
            return None
        self._line_field(line)
        return None

    def _line_field(self, line: bytes) -> None:
        field, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
            self._has_data = True
        elif field == b"event":
            self._event = value.decode("utf-8", errors="replace")
        elif field == b"id":
            if b"\0" not in value:
                self.last_id = value.decode("utf-8", errors="replace")
        elif field == b"retry" and value.isdigit():  # ASCII digits only, as specified
            self.retry_ms = int(value)

    def _dispatch(self) -> Event | None:
        if not self._has_data:
            self._event = ""
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = Event(raw=data, event=self._event or "message", id=self.last_id, size=len(data))
        self._data.clear()
        self._has_data = False
        self._event = ""
        return event

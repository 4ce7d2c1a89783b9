"""Docker's side of the watchdog, for tests that cannot make the real daemon kill a
process for memory or restart a container in a loop (tests/test_stack.py runs the
watchdog against the real daemon).

- ``container(...)``: a container as the Engine API's inspect shows it, with only the
  fields the watchdog reads.
- ``FakeDocker``: the watchdog's two Docker calls answered in memory, where a test looks
  only at the watchdog's judgement.
- ``Engine``: a stand-in Engine API served over HTTP on a unix socket, as dockerd serves
  it: ``GET /containers/json`` (``all``, a ``label`` filter), ``GET /containers/ID/json``,
  ``POST /containers/ID/restart``, and ``GET /events`` with ``since`` (replayed from its
  buffer, as dockerd replays its last 256) and ``type`` / ``event`` / ``label`` filters,
  streamed in chunks as they come; ``drop_streams`` cuts every open stream.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any


def container(
    cid: str,
    service: str,
    *,
    project: str = "p",
    health: str | None = None,
    said: str = "",
    labels: dict[str, str] | None = None,
    running: bool = True,
    restarts: int = 0,
    oom: bool = False,
    exit_code: int = 0,
    started: str = "2026-12-07T00:00:00Z",
    checked: str = "2026-12-07T01:00:00.000000001+01:00",
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Status": "running" if running else "exited",
        "Running": running,
        "Restarting": False,
        "OOMKilled": oom,
        "ExitCode": exit_code,
        "StartedAt": started,
    }
    if health:
        # the last check's start, as dockerd writes it (its local zone: here UTC+1)
        check = {"Start": checked, "ExitCode": 1, "Output": said + "\n"}
        state["Health"] = {"Status": health, "Log": [check]}
    return {
        "Id": cid,
        "Name": f"/{project}-{service}-1",
        "RestartCount": restarts,
        "State": state,
        "Config": {
            "Labels": {
                "com.docker.compose.project": project,
                "com.docker.compose.service": service,
                **(labels or {}),
            }
        },
    }


def project_of(inspected: dict[str, Any]) -> str:
    return str(inspected["Config"]["Labels"].get("com.docker.compose.project", ""))


class FakeDocker:
    """``containers`` and ``restart`` in memory."""

    def __init__(self, listed: list[dict[str, Any]]) -> None:
        self.listed = listed
        self.restarted: list[str] = []

    def containers(self, project: str) -> list[dict[str, Any]]:
        return [c for c in self.listed if project_of(c) == project]

    def restart(self, container_id: str, timeout: int = 30) -> None:
        self.restarted.append(container_id)


def event(
    inspected: dict[str, Any], action: str, when_ns: int | None = None, **attributes: str
) -> dict[str, Any]:
    """A container event as dockerd sends it (the container's labels and name are the
    actor's attributes): ``oom``; ``die`` with ``exitCode``; ``kill`` with ``signal``."""
    when_ns = time.time_ns() if when_ns is None else when_ns
    attributes = {
        **inspected["Config"]["Labels"],
        "name": inspected["Name"].lstrip("/"),
        **attributes,
    }
    return {
        "status": action,
        "id": inspected["Id"],
        "Type": "container",
        "Action": action,
        "Actor": {"ID": inspected["Id"], "Attributes": attributes},
        "scope": "local",
        "time": when_ns // 10**9,
        "timeNano": when_ns,
    }


def oom_event(inspected: dict[str, Any], when_ns: int | None = None) -> dict[str, Any]:
    return event(inspected, "oom", when_ns)


def _matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    attributes = event.get("Actor", {}).get("Attributes", {})
    if filters.get("type") and event.get("Type") not in filters["type"]:
        return False
    if filters.get("event") and event.get("Action") not in filters["event"]:
        return False
    for label in filters.get("label", []):
        key, _, value = label.partition("=")
        if attributes.get(key) != value:
            return False
    return True


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    engine: Engine


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def address_string(self) -> str:  # a unix socket has no client address
        return "docker-client"

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        engine = self.server.engine
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        filters = json.loads(query.get("filters") or "{}")
        parts = url.path.strip("/").split("/")
        if parts == ["containers", "json"]:
            with engine.lock:
                listed = [
                    {"Id": c["Id"], "Labels": c["Config"]["Labels"]}
                    for c in engine.containers.values()
                    if query.get("all") == "1" or c["State"]["Running"]
                    if _matches({"Actor": {"Attributes": c["Config"]["Labels"]}}, filters)
                ]
            self._json(200, listed)
        elif len(parts) == 3 and parts[0] == "containers" and parts[2] == "json":
            with engine.lock:
                found = engine.containers.get(parts[1])
            if found is None:
                self._json(404, {"message": f"No such container: {parts[1]}"})
            else:
                self._json(200, found)
        elif parts == ["events"]:
            self._events(query.get("since", "0"), filters)
        else:
            self._json(404, {"message": "page not found"})

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        engine = self.server.engine
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "containers" and parts[2] == "restart":
            with engine.lock:
                engine.restarted.append(parts[1])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"message": "page not found"})

    def _client_gone(self) -> bool:
        """The client closed its end (dockerd notices it the same way, and stops)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

    def _events(self, since: str, filters: dict[str, list[str]]) -> None:
        engine = self.server.engine
        seconds, _, nanos = since.partition(".")
        since_ns = int(seconds) * 10**9 + int((nanos or "0").ljust(9, "0")[:9])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with engine.lock:
            generation = engine.generation
            engine.streams += 1
        sent = 0
        try:
            while True:
                with engine.lock:
                    if engine.generation != generation or engine.stopping:
                        return  # cut: as a daemon restart or a dropped connection
                    fresh = [
                        e
                        for e in engine.events[sent:]
                        if e["timeNano"] >= since_ns and _matches(e, filters)
                    ]
                    sent = len(engine.events)
                for event in fresh:
                    data = json.dumps(event).encode() + b"\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                if self._client_gone():
                    return
                with engine.changed:
                    engine.changed.wait(0.05)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            with engine.lock:
                engine.streams -= 1
            self.close_connection = True


class Engine:
    """The stand-in Engine API on ``socket_path``; the tests change ``containers`` (by
    id) and call ``emit``."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.containers: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.restarted: list[str] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition()
        self.generation = 0
        self.streams = 0
        self.stopping = False
        self._server: _Server | None = None

    def put(self, *inspected: dict[str, Any]) -> None:
        with self.lock:
            for c in inspected:
                self.containers[c["Id"]] = c

    def emit(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)
        with self.changed:
            self.changed.notify_all()

    def drop_streams(self) -> None:
        with self.lock:
            self.generation += 1

    def wait_for_streams(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if self.streams == count:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.streams} event streams open, not {count}")
            time.sleep(0.02)

    def start(self) -> Engine:
        self._server = _Server(str(self.socket_path), _Handler)
        self._server.engine = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

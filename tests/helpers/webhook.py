"""A webhook (or a heartbeat's ping URL) on 127.0.0.1, for the alert tests: it records
every request and answers the statuses it is told to, then 200. It can start on a port
chosen before (a webhook that is down, then back)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .ports import free_port

SECRET = "s3cr3t-t0ken"  # in every URL: no log line may show it


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes
    content_type: str


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.got: list[Request] = []
        self.answers: list[int] = []  # the next answers' statuses, then 200
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path}/{SECRET}"

    def bodies(self) -> list[str]:
        return [r.body.decode() for r in self.got if r.method == "POST"]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bytes) -> None:
                receiver.got.append(
                    Request(self.command, self.path, body, self.headers.get("Content-Type", ""))
                )
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self._answer(b"")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

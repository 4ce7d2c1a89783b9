"""The stack test's alert receiver: appends every POSTed body to /out/alerts.log."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open("/out/alerts.log", "ab") as fh:
            fh.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the healthcheck
        self.send_response(200)
        self.end_headers()


ThreadingHTTPServer(("0.0.0.0", 8080), Sink).serve_forever()

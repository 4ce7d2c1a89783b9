"""What the stand-in VMs (tests/helpers/vm.py) reach instead of the Internet: services on
this machine's address on the VMs' network, each standing for one outside party.

- ``Recorder``: the alert webhook and the dead-man's-switch URL (every request kept);
- ``Files``: a folder over HTTP (the wheelhouse that stands for PyPI);
- ``GitServer``: the repository the server clones and fetches (``git daemon``), holding
  commits made from this working tree, changes included, without touching its index;
- ``Emulator``: EventStreams, the recorded events replayed (``wiki-events replay``).
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from .paths import ROOT
from .ports import free_port

VENV_BIN = Path(sys.executable).parent


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def start(self) -> str:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class Recorder(_Server):
    """Answers 200 to everything and keeps (method, path, body) of each request."""

    def __init__(self, host: str) -> None:
        self.seen: list[tuple[str, str, str]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _keep(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace")
                recorder.seen.append((self.command, self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = _keep

            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)
        self.url = self.start()

    def bodies(self, path: str, since: int = 0) -> list[str]:
        return [body for _, p, body in self.seen[since:] if p.startswith(path)]


class Files(_Server):
    def __init__(self, host: str, folder: Path) -> None:
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        super().__init__((host, 0), functools.partial(Quiet, directory=str(folder)))
        self.url = self.start()


def git(*args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.strip()


class GitServer:
    """A bare repository served by ``git daemon`` (git://HOST:PORT/wiki-events.git)."""

    def __init__(self, host: str, folder: Path) -> None:
        self.folder = folder
        self.bare = folder / "wiki-events.git"
        git("init", "-q", "--bare", str(self.bare))
        port = free_port()
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                f"--listen={host}",
                f"--port={port}",
                f"--base-path={folder}",
                "--export-all",
                "--reuseaddr",
                str(folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"git://{host}:{port}/wiki-events.git"
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", self.url], capture_output=True).returncode:
            assert self.proc.poll() is None and time.monotonic() < deadline, "git daemon"
            time.sleep(0.2)

    def publish(self, ref: str, changes: Mapping[str, str] | None = None, parent: str = "") -> str:
        """A commit of this working tree as it is (uncommitted changes too), with
        ``changes`` (path -> text) on top, pushed as ``ref``; its id. The checkout's own
        index and branches are left alone (a scratch index)."""
        index = self.folder / f"index-{time.monotonic_ns()}"
        env = {"GIT_INDEX_FILE": str(index)}
        git("read-tree", "HEAD", env=env)
        git("add", "-A", env=env)
        for path, text in (changes or {}).items():
            blob = subprocess.run(
                ["git", "hash-object", "-w", "--stdin"],
                cwd=ROOT,
                input=text,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git("write-tree", env=env)
        index.unlink()
        who = {
            "GIT_AUTHOR_NAME": "stack test",
            "GIT_AUTHOR_EMAIL": "stack-test@wiki-events.invalid",
            "GIT_COMMITTER_NAME": "stack test",
            "GIT_COMMITTER_EMAIL": "stack-test@wiki-events.invalid",
        }
        commit = git(
            "commit-tree", tree, "-p", parent or "HEAD", "-m", f"stack test: {ref}", env=who
        )
        git("push", "-q", "--force", str(self.bare), f"{commit}:{ref}")
        return commit

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Emulator:
    """EventStreams replaying ``events`` (bytes of NDJSON) as fast as it can; ``serve``
    restarts it on the same port with other events (a client resumes by Last-Event-ID)."""

    def __init__(self, host: str, folder: Path) -> None:
        self.host, self.port, self.folder = host, free_port(), folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://{host}:{self.port}/v2/stream/recentchange"

    def serve(self, events: bytes) -> None:
        self.stop()
        path = self.folder / f"events-{time.monotonic_ns()}.ndjson"
        path.write_bytes(events)
        log = open(self.folder / "emulator.log", "ab")  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "wiki-events"), "replay", str(path), "--host", self.host]
            + ["--port", str(self.port), "--speed", "0"],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://{self.host}:{self.port}/", timeout=1)
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "emulator"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

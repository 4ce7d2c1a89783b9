"""What the backup tests run deploy/bin/backup and deploy/bin/stack against: an S3
stand-in (moto's server, a subprocess on a free port), the embedded ClickHouse with
production's users (deploy/clickhouse/users.d), and a PATH in which every program the
scripts start is a wrapper that logs its argv, ``docker`` included: a stand-in that runs
``compose exec -T backup /app/deploy/bin/...`` with this checkout's script, forwards
``compose exec -T clickhouse clickhouse-client`` to the embedded server as ``default`` (as
the real client does inside the container) and logs every other compose call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .clickhouse import ClickHouseProcess
from .paths import ROOT, USERS_D
from .ports import free_port

S3_KEY_ID = "KEYID-backup"
S3_SECRET = "s3-SECRET-never-in-argv-0123456789"
ROLES = ("loader", "dbt", "dashboard", "backup", "dumps")
PASSWORDS = {f"CLICKHOUSE_{role.upper()}_PASSWORD": f"{role}-pw" for role in ROLES}
VENV_BIN = Path(sys.executable).parent


class MotoS3:
    """moto's S3 server (``moto_server``), one bucket; objects listed and removed with
    plain HTTP (S3's REST API, unsigned: moto does not check signatures)."""

    def __init__(self, folder: Path, bucket: str = "backups", host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.bucket = bucket
        self.log = folder / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoS3:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "moto_server"), "-H", self.host, "-p", str(self.port)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(self.endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text()
                    raise RuntimeError(f"moto_server did not start: {log}") from None
                time.sleep(0.1)
        assert httpx.put(f"{self.endpoint}/{self.bucket}").status_code == 200
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Every object's key and size under ``prefix``."""
        import xml.etree.ElementTree as ET

        found: dict[str, int] = {}
        token = ""
        while True:
            params = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            reply = httpx.get(f"{self.endpoint}/{self.bucket}", params=params, timeout=30)
            reply.raise_for_status()
            root = ET.fromstring(reply.content)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for item in root.iter(f"{ns}Contents"):
                key = item.findtext(f"{ns}Key") or ""
                found[key] = int(item.findtext(f"{ns}Size") or 0)
            token = root.findtext(f"{ns}NextContinuationToken") or ""
            if not token:
                return found

    def remove(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (boto3, moto's own dependency, signs it)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )
        keys = list(self.objects(prefix))
        for key in keys:
            client.delete_object(Bucket=self.bucket, Key=key)
        assert not self.objects(prefix)
        return len(keys)


def start_clickhouse(folder: Path) -> ClickHouseProcess:
    """The embedded ClickHouse with production's users (their passwords: ``<role>-pw``),
    allowed to reach the S3 stand-in on the loopback."""
    env = {**PASSWORDS, "LOCAL_CLICKHOUSE_ALLOW_NETWORK": "1"}
    return ClickHouseProcess(folder / "data", users_d=USERS_D, env=env).start()


FAKE_DOCKER = """#!{python}
import json, os, subprocess, sys
import httpx
args = sys.argv[1:]
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
passed = []  # exec's -e NAME: NAME's value from this environment, as docker's
while args[:3] == ["compose", "exec", "-T"] and args[3:4] == ["-e"]:
    passed.append(args[4])
    args = args[:3] + args[5:]
if args[:4] == ["compose", "exec", "-T", "backup"]:
    script = args[4].replace("/app/", os.environ["CHECKOUT"] + "/", 1)
    sys.exit(subprocess.run(["/bin/sh", script, *args[5:]]).returncode)
if args[:5] == ["compose", "exec", "-T", "clickhouse", "clickhouse-client"]:
    rest = args[5:]
    if rest[:1] == ["--query"] and len(rest) == 2:
        query = rest[1]
    elif not rest:
        query = sys.stdin.read()
    else:
        sys.exit("clickhouse-client stand-in: only --query Q or the query on stdin")
    with open(os.environ["QUERY_LOG"], "a") as log:
        log.write(json.dumps(query.strip()) + "\\n")
    # as the real client: CLICKHOUSE_USER and CLICKHOUSE_PASSWORD when set, else default
    auth = None
    if "CLICKHOUSE_USER" in passed and os.environ.get("CLICKHOUSE_USER"):
        given = "CLICKHOUSE_PASSWORD" in passed
        auth = (os.environ["CLICKHOUSE_USER"], os.environ.get("CLICKHOUSE_PASSWORD", "") * given)
    url = httpx.URL(os.environ["CLICKHOUSE_ADMIN_URL"])
    if auth is not None:
        url = url.copy_with(username=None, password=None)
    reply = httpx.post(url, content=query, auth=auth, timeout=3600)
    if reply.status_code != 200:
        sys.stderr.write(reply.text)
        sys.exit(1)
    sys.stdout.write(reply.text)
    sys.exit(0)
with open(os.environ["COMPOSE_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
"""

# every other program the scripts run: logged, then the real one
LOGGED = (
    '#!/bin/sh\nprintf \'%s\\n\' "$(printf \'%s\\t\' "$0" "$@")" >> "$ARGV_LOG"\nexec {real} "$@"\n'
)
PROGRAMS = (
    "awk", "cat", "cut", "date", "dirname", "grep", "head", "mv", "sed", "sleep", "tail", "tr",
)  # fmt: skip


@dataclass
class Scripts:
    """deploy/bin/backup and deploy/bin/stack run as the server runs them, against
    ``server`` and ``s3``, with the status files in ``status``."""

    folder: Path
    server: ClickHouseProcess | None  # None: only the schedule (`backup due`) is asked
    s3: MotoS3 | None
    prefix: str = "wiki-events"

    def __post_init__(self) -> None:
        self.bin = self.folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.status = self.folder / "status"
        self.status.mkdir(exist_ok=True)
        scripts = {"docker": FAKE_DOCKER.format(python=sys.executable)}
        for name in PROGRAMS:
            real = shutil.which(name)
            assert real, name
            scripts[name] = LOGGED.format(real=real)
        scripts["wiki-events"] = LOGGED.format(real=VENV_BIN / "wiki-events")
        # the server's own python3 (deploy/envfile.py, deploy/analysts.py): standard library
        scripts["python3"] = LOGGED.format(real=sys.executable)
        for name, text in scripts.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    @property
    def argv_log(self) -> Path:
        return self.folder / "argv.log"

    @property
    def compose_log(self) -> Path:
        return self.folder / "compose.log"

    @property
    def query_log(self) -> Path:
        return self.folder / "query.log"

    def env(self, **extra: str) -> dict[str, str]:
        port = self.server.port if self.server else 9
        endpoint = self.s3.endpoint if self.s3 else "http://127.0.0.1:9"
        bucket = self.s3.bucket if self.s3 else "backups"
        return {
            "PATH": str(self.bin),
            "HOME": str(self.folder),
            "ARGV_LOG": str(self.argv_log),
            "COMPOSE_LOG": str(self.compose_log),
            "QUERY_LOG": str(self.query_log),
            "CHECKOUT": str(ROOT),
            "BACKUP_STATUS_DIR": str(self.status),
            "CLICKHOUSE_URL": f"http://backup:backup-pw@127.0.0.1:{port}/default",
            "CLICKHOUSE_ADMIN_URL": f"http://default:@127.0.0.1:{port}/",
            "BACKUP_S3_URL": f"{endpoint}/{bucket}/{self.prefix}",
            "BACKUP_S3_ACCESS_KEY_ID": S3_KEY_ID,
            "BACKUP_S3_SECRET_ACCESS_KEY": S3_SECRET,
            "ALERT_WEBHOOK_URL": "",
            **extra,
        }

    def run(
        self, script: str, *args: str, timeout: float = 600, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(ROOT / "deploy" / "bin" / script), *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
        )

    def backup(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("backup", *args, **extra)

    def stack(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("stack", *args, **extra)

    def last(self, which: str = "ok") -> dict[str, str]:
        """A status file's name=value lines."""
        text = (self.status / f"last-{which}").read_text()
        return dict(line.split("=", 1) for line in text.splitlines()[1:] if "=" in line)

    def write_status(
        self, which: str, first: str, mtime: float | None = None, **fields: Any
    ) -> None:
        """A status file as deploy/bin/backup writes it, e.g. with times in the past."""
        path = self.status / f"last-{which}"
        path.write_text("\n".join([first, *(f"{k}={v}" for k, v in fields.items())]) + "\n")
        if mtime is not None:
            os.utime(path, (mtime, mtime))

    def clear(self) -> None:
        for path in (self.argv_log, self.compose_log, self.query_log):
            path.unlink(missing_ok=True)
        for path in self.status.iterdir():
            path.unlink()

    def queries(self) -> list[str]:
        if not self.query_log.exists():
            return []
        return [json.loads(line) for line in self.query_log.read_text().splitlines()]

    def compose_calls(self) -> list[str]:
        return self.compose_log.read_text().splitlines() if self.compose_log.exists() else []

#!/usr/bin/env python3
"""The one way a wiki-events ``.env`` is written: first boot, rotation, .env.example, tests.

    python3 deploy/envfile.py init SETTINGS.json .env   # first boot (cloud-init), or again
    python3 deploy/envfile.py rotate .env [NAME ...]     # new secrets (all, or the NAMEs)
    python3 deploy/envfile.py set .env NAME=VALUE ...    # e.g. the backup bucket's keys
    python3 deploy/envfile.py set .env NAME ...          # the value asked for (a secret:
                                                         # on no command line, no history)
    python3 deploy/envfile.py example > .env.example     # the documented template

Settings that are not secret (domain, contact, version, data folder...) come from a JSON
file: terraform's cloud-init template writes it with ``jsonencode``, so terraform never
quotes a value and never sees a password. Secrets are generated here, on the server, at
first boot, and kept on the data volume with the rest of the state; ``init`` keeps the
secrets an existing ``.env`` already has, so running it again (a replaced server with the
old volume) changes nothing but the settings.

Every value is written single-quoted: Docker Compose (v1 and v2) takes a single-quoted
``.env`` value literally, so a bcrypt hash such as ``$2a$14$abc...`` is not interpolated
(unquoted and double-quoted values are: ``$2a$10$abcdefghij`` becomes ``$2a$10``). A value
holding a single quote or a line break cannot be written that way and is refused.

Standard library only: it runs on the server's own python3 before any image exists.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# (name, default, comment above it); "" default = must come from settings or is a secret
FIELDS: tuple[tuple[str, str, str], ...] = (
    (
        "WIKI_EVENTS_CONTACT",
        "ops@example.org",
        "who runs this (Wikimedia's User-Agent policy asks for a contact)",
    ),
    ("WIKI_EVENTS_VERSION", "local", "image tag of wiki-events (the Dockerfile's build)"),
    ("STREAM_URL", "https://stream.wikimedia.org/v2/stream/recentchange", ""),
    ("DOMAIN", "wiki-events.example.org", "the public side: Caddy gets a certificate for DOMAIN"),
    ("ACME_EMAIL", "ops@example.org", ""),
    ("DASH_USER", "wiki", ""),
    (
        "DATA_DIR",
        "/mnt/wiki-events",
        "the data volume's mount point: ClickHouse, RabbitMQ, the reader's checkpoint, dbt's "
        "marker, Caddy's certificates and this file live there",
    ),
    (
        "BRONZE_RETENTION_DAYS",
        "90",
        "retention and checks (days from ingestion; silver at least bronze's)",
    ),
    ("SILVER_RETENTION_DAYS", "90", ""),
    ("DBT_CHECK_EVERY", "900", "seconds between scheduled dbt test + source freshness runs"),
    (
        "ALERT_WEBHOOK_URL",
        "",
        "alerts (freshness, dbt tests, backups, disk, restarts) are POSTed here as text: "
        "an ntfy topic URL, a Slack incoming webhook, a mail relay's HTTP endpoint",
    ),
    ("DISK_ALERT_PERCENT", "80", ""),
    (
        "READER_STALE_SECONDS",
        "300",
        "liveness: the reader is stuck when its checkpoint is older; the loader when RabbitMQ "
        "holds a backlog and bronze had no insert for this long",
    ),
    ("LOADER_STALE_SECONDS", "300", ""),
    (
        "BACKUP_S3_URL",
        "",
        "off-machine backup: an S3 bucket URL (Hetzner Object Storage), e.g. "
        "https://fsn1.your-objectstorage.com/BUCKET/wiki-events; empty = no backup",
    ),
    ("BACKUP_S3_ACCESS_KEY_ID", "", "set over SSH: envfile.py set .env NAME=VALUE"),
    ("BACKUP_S3_SECRET_ACCESS_KEY", "", ""),
    ("BACKUP_KEEP_DAYS", "14", ""),
    ("BACKUP_EVERY", "86400", "seconds between backups"),
    (
        "COMPOSE_PROFILES",
        "",
        "opt-in services: 'dumps' = the page-view and media-count dumps followers, their "
        "models built by the dbt service (deploy.md, Page views and media traffic)",
    ),
    ("DUMPS_URL", "https://dumps.wikimedia.org/other/", "where the dumps are read"),
    ("RABBITMQ_VHOST", "wiki-events", "RabbitMQ: rendered into definitions at start"),
    ("RABBITMQ_ADMIN_USER", "admin", ""),
)

# generated at first boot on the server, replaced by `rotate`
SECRETS = (
    "CLICKHOUSE_LOADER_PASSWORD",
    "CLICKHOUSE_DBT_PASSWORD",
    "CLICKHOUSE_DASHBOARD_PASSWORD",
    "CLICKHOUSE_BACKUP_PASSWORD",
    "CLICKHOUSE_DUMPS_PASSWORD",
    "RABBITMQ_ADMIN_PASSWORD",
    "RABBITMQ_READER_PASSWORD",
    "RABBITMQ_LOADER_PASSWORD",
    "DASH_PASSWORD",
)
DERIVED = ("DASH_PASSWORD_HASH",)  # bcrypt of DASH_PASSWORD, for Caddy's basic auth
SETTINGS = tuple(name for name, _, _ in FIELDS)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class EnvError(ValueError):
    """A value that cannot be written, or a file that cannot be read."""


def quote(name: str, value: str) -> str:
    if "'" in value or "\n" in value or "\r" in value:
        raise EnvError(f"{name}: a value may not hold a single quote or a line break")
    return f"'{value}'"


def parse(text: str) -> dict[str, str]:
    """Read a .env: KEY='literal', KEY="..." or KEY=bare; comments and blanks skipped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise EnvError(f"line {number}: not NAME=VALUE")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def render(values: Mapping[str, str]) -> str:
    """The .env text: every known field in order, with its comment, then the secrets."""
    lines = [
        "# wiki-events settings, written by deploy/envfile.py: never commit, never hand-quote.",
        "# Every value is single-quoted so Compose takes it literally ($ in hashes).",
    ]
    for name, default, comment in FIELDS:
        if comment:
            lines += ["", f"# {comment}"]
        lines.append(f"{name}={quote(name, values.get(name, default))}")
    lines += ["", "# secrets: generated on the server at first boot (envfile.py init / rotate)"]
    for name in (*SECRETS, *DERIVED):
        lines.append(f"{name}={quote(name, values.get(name, ''))}")
    extra = sorted(set(values) - set(SETTINGS) - set(SECRETS) - set(DERIVED))
    if extra:
        lines += ["", "# other settings"]
        lines += [f"{name}={quote(name, values[name])}" for name in extra]
    return "\n".join(lines) + "\n"


def new_secret() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]: no quoting hazard


def bcrypt_hash(password: str) -> str:
    """Caddy's own bcrypt (``caddy hash-password`` reads the password on stdin).

    ``WIKI_EVENTS_HASHER`` names the command; by default ``caddy`` when it is installed,
    else the compose stack's caddy service (``docker compose run``), as on the server.
    """
    command = os.environ.get("WIKI_EVENTS_HASHER")
    if command:
        argv = command.split()
    elif shutil.which("caddy"):
        argv = ["caddy", "hash-password"]
    else:
        argv = [
            "docker",
            "compose",
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "caddy",
            "caddy",
            "hash-password",
        ]
    done = subprocess.run(argv, input=password + "\n", capture_output=True, text=True, check=False)
    hashed = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode or not hashed.startswith("$2"):
        raise EnvError(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return hashed


def with_secrets(values: dict[str, str], renew: tuple[str, ...] = ()) -> dict[str, str]:
    """Fill every missing secret (and those in ``renew``) and keep the hash in step."""
    out = dict(values)
    changed = False
    for name in SECRETS:
        if not out.get(name) or name in renew:
            out[name] = new_secret()
            changed = changed or name == "DASH_PASSWORD"
    if changed or not out.get("DASH_PASSWORD_HASH"):
        out["DASH_PASSWORD_HASH"] = bcrypt_hash(out["DASH_PASSWORD"])
    return out


def init(settings: Mapping[str, object], env_path: Path) -> dict[str, str]:
    """Write ``env_path`` from settings, keeping its secrets when it exists."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise EnvError(f"unknown settings: {', '.join(unknown)}")
    values = parse(env_path.read_text()) if env_path.exists() else {}
    values.update({name: str(value) for name, value in settings.items()})
    values = with_secrets(values)
    write(env_path, values)
    return values


def write(env_path: Path, values: Mapping[str, str]) -> None:
    text = render(values)
    env_path = env_path.resolve()  # the checkout's .env links to the volume's: write there
    tmp = env_path.with_name(env_path.name + ".new")
    # made 0600 before a secret is in it (write_text would make it by the umask first)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # an old .env.new keeps its mode through O_CREAT
        out.write(text)
    tmp.replace(env_path)


def example() -> str:
    return render({})


def ask(name: str) -> str:
    """A value from the terminal without echo, or one line of stdin when it is not one:
    a secret typed here is in no command line (``ps``) and no shell history."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{name}: ")
    line = sys.stdin.readline()
    if not line:
        raise EnvError(f"no value for {name} on stdin")
    return line.rstrip("\r\n")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["example"] and len(argv) == 1:
            sys.stdout.write(example())
        elif argv[:1] == ["init"] and len(argv) == 3:
            init(json.loads(Path(argv[1]).read_text()), Path(argv[2]))
        elif argv[:1] == ["rotate"] and len(argv) >= 2:
            path = Path(argv[1])
            names = tuple(argv[2:]) or SECRETS
            bad = sorted(set(names) - set(SECRETS))
            if bad:
                raise EnvError(f"not a generated secret: {', '.join(bad)} (one of {SECRETS})")
            write(path, with_secrets(parse(path.read_text()), renew=names))
            print(
                f"envfile: new {', '.join(names)} in {path}; the services take them when "
                "recreated (deploy/bin/stack rotate does both steps)"
            )
        elif argv[:1] == ["set"] and len(argv) >= 3:
            path = Path(argv[1])
            values = parse(path.read_text())
            for item in argv[2:]:
                name, sep, value = item.partition("=")
                if not _NAME.match(name):
                    raise EnvError(f"{item!r}: expected NAME=VALUE or NAME")
                values[name] = value if sep else ask(name)
            write(path, values)
        else:
            sys.stderr.write(__doc__ or "")
            return 2
    except (EnvError, OSError, json.JSONDecodeError) as exc:
        sys.stderr.write(f"envfile: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""The one way a wiki-events ``.env`` is written: first boot, rotation, .env.example, tests.

    python3 deploy/envfile.py init SETTINGS.json .env   # first boot (cloud-init), or again
    python3 deploy/envfile.py rotate .env [NAME ...]     # new secrets (all, or the NAMEs)
    python3 deploy/envfile.py set .env NAME=VALUE ...    # e.g. the backup bucket's keys
    python3 deploy/envfile.py set .env NAME ...          # the value asked for (a secret:
                                                         # on no command line, no history)
    python3 deploy/envfile.py release .env NAME ...      # the settings' value wins again
    python3 deploy/envfile.py example > .env.example     # the documented template

Settings that are not secret (domain, contact, version, data folder...) come from a JSON
file: terraform's cloud-init template writes it with ``jsonencode``, so terraform never
quotes a value and never sees a password. Secrets are generated here, on the server, at
first boot, and kept on the data volume with the rest of the state; ``init`` keeps the
secrets an existing ``.env`` already has, so running it again (a replaced server with the
old volume) changes nothing but the settings.

``init`` merges, it does not overwrite. Terraform owns its settings, the operator owns
what they set by hand: ``set`` records each name it writes (``ENVFILE_SET_BY_HAND``), and
``init`` keeps such a value even where the settings say otherwise (a bucket set over SSH,
a retention raised by hand), naming each value it keeps and each it changes; ``release``
hands a name back to the settings. Nor does ``init`` blank a value with an empty setting
(a ``.env`` from before the record). ``WIKI_EVENTS_VERSION`` belongs to neither:
``deploy/bin/stack`` writes the commit it built and started.

Every value is written single-quoted: Docker Compose (v1 and v2) takes a single-quoted
``.env`` value literally, so a bcrypt hash such as ``$2a$14$abc...`` is not interpolated
(unquoted and double-quoted values are: ``$2a$10$abcdefghij`` becomes ``$2a$10``). A value
that would not be read back byte for byte is refused, naming the variable (``quote``): a
single quote; a backslash (Compose v2 reads a trailing one as escaping the closing quote
and swallows the next line, so ``READER_STALE_SECONDS='300\'`` turns the next setting's
text into a variable of its own; python-dotenv reads ``\\`` as one); a line break, or
any control, line or paragraph separator character (NUL, ``\x0b``, ``\x1c``, ``\x85``,
U+2028...: ``splitlines`` breaks lines there, and a process's environment cannot hold a
NUL). ``parse`` splits on ``\n`` alone, as ``render`` writes, so a file holding such a
value from before still reads, and ``set`` can replace it.

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
import unicodedata
from collections.abc import Mapping
from pathlib import Path

# (name, default, comment above it); "" default = must come from settings or is a secret
FIELDS: tuple[tuple[str, str, str], ...] = (
    (
        "WIKI_EVENTS_CONTACT",
        "ops@example.org",
        "who runs this (Wikimedia's User-Agent policy asks for a contact)",
    ),
    (
        "WIKI_EVENTS_VERSION",
        "local",
        "the image tag of wiki-events: the commit deploy/bin/stack built and started (it "
        "writes this; plain `docker compose run` then uses the same image)",
    ),
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
        "an ntfy topic URL, a Slack incoming webhook, a mail relay's HTTP endpoint; "
        'ALERT_WEBHOOK_FORMAT=json sends {"text": ...} instead, as Slack wants',
    ),
    ("ALERT_WEBHOOK_FORMAT", "text", ""),
    ("DISK_ALERT_PERCENT", "80", "the watchdog alerts when the data volume is this full (%)"),
    (
        "HEARTBEAT_URL",
        "",
        "a dead-man's switch (a healthchecks-style ping URL), called every few minutes so "
        "that a dead server is noticed from outside; empty = none",
    ),
    ("HEARTBEAT_EVERY", "300", "seconds between pings (the watchdog's, after a pass that worked)"),
    (
        "ROOT_DISK_ALERT_PERCENT",
        "80",
        "the host check (deploy/hostcheck.py, a systemd timer): the root disk's alert, and "
        "days before the HTTPS certificate's end that it alerts",
    ),
    ("CERT_ALERT_DAYS", "14", ""),
    (
        "DUMPS_STALE_SECONDS",
        "14400",
        "a dumps follower is unhealthy (alerted) when its newest file is this much later than "
        "the dumps' publication delay explains (8 h for page views, 2 days for media counts)",
    ),
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
    (
        "DUMPS_REDIRECT_HOSTS",
        "",
        "hosts (host or host:port, comma-separated) the dumps site may redirect to, besides "
        "its own; other redirects are refused",
    ),
    (
        "CLICKHOUSE_CLUSTER",
        "",
        "past one machine (deploy.md, section 9): the ClickHouse cluster's name in "
        "remote_servers (deploy/cluster: wiki); bronze's and dbt's DDL then run ON CLUSTER "
        "with Replicated engines. Empty = one server",
    ),
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
# the names `set` wrote, space-separated: `init` keeps their values over the settings'
SET_BY_HAND = "ENVFILE_SET_BY_HAND"
# written by deploy/bin/stack (the checked-out commit), never taken from the settings
STACK_OWNED = ("WIKI_EVENTS_VERSION",)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class EnvError(ValueError):
    """A value that cannot be written, or a file that cannot be read."""


def quote(name: str, value: str) -> str:
    """``'value'``, or ``EnvError`` naming ``name`` when the value would not come back
    from Compose (or python-dotenv, or ``parse``) exactly as it went in."""
    for char in value:
        why = _unwritable(char)
        if why:
            raise EnvError(
                f"{name}: a value may not hold {why} (found {char!r}); "
                f"replace it: envfile.py set .env {name}=..."
            )
    return f"'{value}'"


def _unwritable(char: str) -> str:
    if char == "'":
        return "a single quote"
    if char == "\\":
        return "a backslash (Compose reads a trailing one as escaping the closing quote)"
    if char in "\r\n":
        return "a line break"
    kind = unicodedata.category(char)
    if kind == "Cc":  # C0 and C1 controls: NUL, \t, \x0b, \x0c, \x1c-\x1e, \x7f, \x85 ...
        return "a control character"
    if kind in ("Zl", "Zp"):  # U+2028, U+2029
        return "a line or paragraph separator"
    return ""


def parse(text: str) -> dict[str, str]:
    """Read a .env: KEY='literal', KEY="..." or KEY=bare; comments and blanks skipped.
    Lines end at ``\n`` alone (as ``render`` writes them, and as Compose reads them):
    no other character ``splitlines`` knows ends a line here."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
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
    lines += [
        "",
        "# set by hand (envfile.py set): init keeps these over the settings' (envfile.py release)",
        f"{SET_BY_HAND}={quote(SET_BY_HAND, values.get(SET_BY_HAND, ''))}",
    ]
    extra = sorted(set(values) - set(SETTINGS) - set(SECRETS) - set(DERIVED) - {SET_BY_HAND})
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


def hand_set(values: Mapping[str, str]) -> list[str]:
    return values.get(SET_BY_HAND, "").split()


def merge(
    values: Mapping[str, str], settings: Mapping[str, object]
) -> tuple[dict[str, str], list[str]]:
    """``values`` (a .env) with ``settings`` (terraform's) merged in, and what was done:
    a value set by hand is kept, an empty setting never blanks a value, the stack's own
    are left alone; every other setting is taken."""
    out = dict(values)
    said = []
    by_hand = set(hand_set(values))
    for name, raw in settings.items():
        new, old = str(raw), values.get(name)
        if old is None or old == new:
            out[name] = new
        elif name in STACK_OWNED:
            said.append(
                f"{name}: kept {old!r}, written by deploy/bin/stack (the settings' {new!r} ignored)"
            )
        elif name in by_hand:
            said.append(
                f"{name}: kept {old!r}, set by hand; the settings say {new!r} "
                f"(envfile.py release .env {name} to take theirs)"
            )
        elif not new:
            said.append(f"{name}: kept {old!r}; the settings' empty value blanks nothing")
        else:
            out[name] = new
            said.append(f"{name}: {old!r} -> {new!r} (settings)")
    return out, said


def init(settings: Mapping[str, object], env_path: Path) -> dict[str, str]:
    """Write ``env_path`` from settings, keeping its secrets and what was set by hand."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise EnvError(f"unknown settings: {', '.join(unknown)}")
    values = parse(env_path.read_text()) if env_path.exists() else {}
    fresh = not values
    values, said = merge(values, settings)
    if not fresh:
        for line in said:
            sys.stderr.write(f"envfile: {line}\n")
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
            by_hand = hand_set(values)
            for item in argv[2:]:
                name, sep, value = item.partition("=")
                if not _NAME.match(name) or name == SET_BY_HAND:
                    raise EnvError(f"{item!r}: expected NAME=VALUE or NAME")
                values[name] = value if sep else ask(name)
                if name not in by_hand and name not in STACK_OWNED:
                    by_hand.append(name)
            values[SET_BY_HAND] = " ".join(by_hand)
            write(path, values)
        elif argv[:1] == ["release"] and len(argv) >= 3:
            path = Path(argv[1])
            values = parse(path.read_text())
            values[SET_BY_HAND] = " ".join(n for n in hand_set(values) if n not in argv[2:])
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

#!/usr/bin/env python3
"""What only the server itself can see of the stack, checked as an outsider would, every
5 minutes (deploy/systemd/wiki-events-hostcheck.timer):

- ``https://$DOMAIN/`` answers: the system's DNS, its CA store, a TLS handshake that
  verifies the certificate and the name, then an HTTP answer under 500 (the basic auth's
  401 counts: Caddy is up). A refused certificate is a failure like a refused connection.
  Alerted once it failed ``--after`` checks in a row (2: a restart is no outage).
- the certificate ends within ``CERT_ALERT_DAYS`` (14): Caddy renews 30 days before the
  end, so a certificate this close to it means renewal is failing.
- the root disk (Docker's images, containers and logs; the data volume is the watchdog's)
  above ``ROOT_DISK_ALERT_PERCENT`` (80).

Each problem is alerted once when it starts and once when it is over; an alert the webhook
did not take is kept and sent at the next run. Settings and ALERT_WEBHOOK_URL come from the
data volume's ``.env`` (``envfile.parse``); the state (what is open, what waits) from
``--state``. Standard library only: it runs on the server's own python3, beside Docker.

    python3 deploy/hostcheck.py [--env /mnt/wiki-events/.env]
        [--state /var/lib/wiki-events/hostcheck.json] [--disk /] [--after 2]

Exit 0 when every check passed, 1 when one found a problem (the journal says which).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envfile  # noqa: E402 - beside this file, on the server's python3

RETRY_WAITS = (2.0, 5.0)  # within one run; a run later (5 min) it is tried again
TIMEOUT = 15.0


def say(line: str) -> None:
    print(f"hostcheck: {line}", flush=True)


# -- the checks ----------------------------------------------------------------------------


def https(domain: str, port: int, timeout: float = TIMEOUT) -> tuple[str | None, float | None]:
    """``https://domain:port/`` as a visitor reaches it: (what is wrong, or None; the
    certificate's end in seconds since the epoch, when the handshake verified it)."""
    context = ssl.create_default_context()  # the system's CA store; names checked
    conn = http.client.HTTPSConnection(domain, port, timeout=timeout, context=context)
    try:
        conn.request("GET", "/", headers={"User-Agent": "wiki-events-hostcheck"})
        assert isinstance(conn.sock, ssl.SSLSocket)
        cert = conn.sock.getpeercert() or {}
        status = conn.getresponse().status
    except ssl.SSLCertVerificationError as exc:
        return f"its certificate is refused ({exc.verify_message})", None
    except ssl.SSLError as exc:
        return f"the TLS handshake failed ({exc.reason or exc})", None
    except socket.gaierror:
        return f"{domain} does not resolve (DNS)", None
    except ConnectionRefusedError:
        return f"connection refused on port {port}", None
    except TimeoutError:
        return f"no answer within {timeout:.0f} s", None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}", None
    finally:
        conn.close()
    not_after = ssl.cert_time_to_seconds(str(cert["notAfter"])) if "notAfter" in cert else None
    if status >= 500:
        return f"it answers HTTP {status}", not_after
    return None, not_after


def disk_percent(path: str) -> float:
    usage = shutil.disk_usage(path)
    return 100 * usage.used / usage.total


# -- alerts --------------------------------------------------------------------------------


def post(url: str, form: str, text: str, timeout: float = 10.0) -> str | None:
    """One POST of ``text``; None when taken, else why not (never the URL: it is a secret)."""
    if form == "json":
        body, kind = json.dumps({"text": text}).encode(), "application/json"
    else:
        body, kind = text.encode(), "text/plain; charset=utf-8"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return f"URLError: {type(exc.reason).__name__}"
    except (OSError, ValueError) as exc:
        return type(exc).__name__


def deliver(url: str, form: str, text: str, sleep: Callable[[float], object] = time.sleep) -> bool:
    """``post``, again after each of ``RETRY_WAITS`` while it fails."""
    why = post(url, form, text)
    for wait in RETRY_WAITS:
        if why is None:
            break
        sleep(wait)
        why = post(url, form, text)
    if why is not None:
        say(f"alert to the webhook failed: {why}; kept for the next run")
    return why is None


def late(raised: float, now: float) -> str:
    if now - raised < 600:
        return ""
    when = dt.datetime.fromtimestamp(raised, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f" (raised {when}, delivered late)"


# -- one run -------------------------------------------------------------------------------


def settings(env_file: Path) -> dict[str, str]:
    defaults = {name: default for name, default, _ in envfile.FIELDS}
    return {**defaults, **envfile.parse(env_file.read_text())}


def number(values: dict[str, str], name: str) -> float:
    text = values.get(name) or ""
    try:
        return float(text)
    except ValueError:
        raise SystemExit(f"hostcheck: {name}={text!r} in the .env is not a number") from None


def run(env_file: Path, state_file: Path, disk: str, after: int) -> int:
    values = settings(env_file)
    domain = values["DOMAIN"]
    port = int(number(values, "HTTPS_PORT")) if values.get("HTTPS_PORT") else 443
    site = f"https://{domain}/" if port == 443 else f"https://{domain}:{port}/"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    opened: dict[str, str] = state.get("open", {})
    failures: int = state.get("https_failures", 0)
    pending: list[list[object]] = state.get("pending", [])
    now = time.time()
    found: dict[str, str] = {}  # problem -> its alert, this run
    over: dict[str, str] = {}  # problem -> its end's message, when it was open

    problem, not_after = https(domain, port)
    failures = failures + 1 if problem else 0
    if problem:
        say(f"{site}: {problem} ({failures} check(s) in a row)")
        if failures >= after or "https" in opened:
            found["https"] = (
                f"wiki-events: {site} is unreachable from the server itself: {problem}; "
                "see `docker compose ps caddy` and `docker compose logs --tail 100 caddy` "
                "in /opt/wiki-events (deploy.md, section 2)"
            )
    else:
        say(f"{site}: answers")
        over["https"] = f"wiki-events: {site} answers again"
    if not_after is not None:
        days = (not_after - now) / 86400
        ends = dt.datetime.fromtimestamp(not_after, dt.UTC).strftime("%Y-%m-%d %H:%M")
        say(f"the certificate of {domain} ends {ends} UTC, in {days:.0f} days")
        if days < number(values, "CERT_ALERT_DAYS"):
            found["cert"] = (
                f"wiki-events: the certificate of {domain} ends in {days:.0f} days ({ends} "
                "UTC): Caddy renews 30 days before the end, so renewal is failing; see "
                "`docker compose logs caddy | grep -i -e acme -e certificate` in "
                "/opt/wiki-events (deploy.md, section 2)"
            )
        else:
            over["cert"] = f"wiki-events: the certificate of {domain} was renewed: ends {ends} UTC"
    elif "cert" in opened:
        found["cert"] = opened["cert"]  # not seen this time: still open, not said again
    percent, limit = disk_percent(disk), number(values, "ROOT_DISK_ALERT_PERCENT")
    say(f"root disk {disk}: {percent:.0f}% full (alert at {limit:.0f}%)")
    if percent >= limit:
        found["disk"] = (
            f"wiki-events: the server's root disk ({disk}) is {percent:.0f}% full (alert at "
            f"{limit:.0f}%): Docker's images, containers and logs live there; see "
            "`docker system df`, then `docker image prune` (deploy.md, section 2)"
        )
    else:
        over["disk"] = (
            f"wiki-events: the server's root disk ({disk}) is back to {percent:.0f}% full"
        )

    raised = [text for key, text in found.items() if key not in opened]
    raised += [text for key, text in over.items() if key in opened]
    for text in raised:
        say(f"ALERT {text}")
    pending += [[now, text] for text in raised]
    opened = dict(found)

    url, form = values.get("ALERT_WEBHOOK_URL", ""), values.get("ALERT_WEBHOOK_FORMAT") or "text"
    if not url:
        pending = []  # nowhere to send them: the journal has them
    while pending:
        when, text = float(str(pending[0][0])), str(pending[0][1])
        if not deliver(url, form, text + late(when, now)):
            break
        pending.pop(0)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(state_file.name + ".tmp")
    tmp.write_text(json.dumps({"open": opened, "https_failures": failures, "pending": pending}))
    tmp.replace(state_file)
    return 1 if problem or found else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, default=Path("/mnt/wiki-events/.env"))
    parser.add_argument("--state", type=Path, default=Path("/var/lib/wiki-events/hostcheck.json"))
    parser.add_argument("--disk", default="/", help="the root disk's mount point")
    parser.add_argument("--after", type=int, default=2, help="HTTPS failures in a row to alert")
    args = parser.parse_args(argv)
    try:
        return run(args.env, args.state, args.disk, max(args.after, 1))
    except (OSError, envfile.EnvError) as exc:
        say(f"cannot run: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

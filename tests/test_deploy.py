"""The production deployment, validated with the tools that run here.

No Docker engine and no terraform binary on this machine: compose.yaml is checked against
the Compose Specification's JSON schema (``tests/fixtures/compose-spec.schema.json``, the
schema docker-compose 1.29.2 ships as ``compose/config/compose_spec.json``) and against
policy; terraform is parsed with python-hcl2; cloud-init is rendered from its template
and checked by Debian's ``cloud-init schema``; the Caddyfile by Debian's ``caddy``; the
ClickHouse users against the embedded engine; the RabbitMQ definitions are imported into
the real broker and used.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import hcl2
import httpx
import pika
import pika.exceptions
import pytest
import yaml

from reader.publisher import Publisher
from wiki_core.topology import EXCHANGE, LOADER_QUEUE, Message

from .helpers.clickhouse import ClickHouseProcess
from .helpers.cloud_init import SAMPLE as USER_DATA_SAMPLE
from .helpers.cloud_init import render_user_data, runcmd_script, runparts_argv, scripts_folder
from .helpers.envfile import ENVFILE, run_envfile
from .helpers.paths import ROOT, USERS_D
from .helpers.sandbox import logged, real, run_sandboxed, stand_ins
from .helpers.terraform import (
    TERRAFORM,
    plain,
    resources,
    settings_push_script,
    terraform,
)

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
USERS_XML = USERS_D / "wiki-events.xml"
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?\-][^}]*)?\}")


def long_running(name: str) -> bool:
    service = SERVICES[name]
    return service.get("restart") != "no" and "profiles" not in service


# -- compose.yaml ------------------------------------------------------------------------


SAMPLE_ENV = {name: "x" for name in (*ENVFILE.SETTINGS, *ENVFILE.SECRETS, *ENVFILE.DERIVED)}


def compose_config(env: dict[str, str], *files: str) -> subprocess.CompletedProcess[str]:
    """``docker compose config``: Compose v2's own validation and interpolation (no daemon)."""
    args = ["docker", "compose"] + [a for f in files or ("compose.yaml",) for a in ("-f", f)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_is_valid_for_compose_v2_and_the_check_bites(tmp_path: Path) -> None:
    done = compose_config({**SAMPLE_ENV, "DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    opt_in = {name for name, service in SERVICES.items() if "profiles" in service}
    assert opt_in == {"status", "dumps-pageviews", "dumps-mediacounts"}
    assert set(json.loads(done.stdout)["services"]) == set(SERVICES) - opt_in
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"services": {"x": {"image": "a:1", "restrat": "always"}}}))
    refused = compose_config({}, str(broken))
    assert refused.returncode != 0 and "restrat" in refused.stderr


DUMPS_FOLLOWERS = {"dumps-pageviews": "pageviews", "dumps-mediacounts": "mediacounts"}


def test_compose_dumps_profile_runs_both_followers_after_dbt_built_their_models(
    tmp_path: Path,
) -> None:
    """The opt-in profile dumps (COMPOSE_PROFILES=dumps in .env): both followers, as the
    dumps user, gated on dbt; the dbt and bronze services told to build the dumps' part."""
    from wiki_core.config import DEFAULT_DUMPS_URL

    base = {**SAMPLE_ENV, "DATA_DIR": str(tmp_path)}
    del base["DUMPS_URL"]
    done = compose_config({**base, "COMPOSE_PROFILES": "dumps"})
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert DUMPS_FOLLOWERS.keys() <= set(services) and "status" not in services
    for name, command in DUMPS_FOLLOWERS.items():
        service = services[name]
        assert service["entrypoint"] == [
            "/app/deploy/bin/after-dbt",
            "wiki-events",
            command,
            "--follow",
            "--quiet",
        ]
        assert service["restart"] == "unless-stopped"
        assert service["image"] == services["loader"]["image"]  # the app image
        env = service["environment"]
        assert env["CLICKHOUSE_URL"] == "http://dumps:x@clickhouse:8123/default"
        assert env["DUMPS_URL"] == DEFAULT_DUMPS_URL  # Wikimedia's dumps site, other/
        assert env["WIKI_EVENTS_CONTACT"] == "x"
        assert env["WIKI_EVENTS_PROFILES"] == "dumps"  # its gate waits for the dumps' models
        assert {k: v["condition"] for k, v in service["depends_on"].items()} == {
            "clickhouse": "service_healthy",
            "dbt": "service_healthy",
        }
        assert {(v["target"], v.get("read_only")) for v in service["volumes"]} == {("/dbt", True)}
    assert services["dbt"]["environment"]["WIKI_EVENTS_PROFILES"] == "dumps"
    bronze = services["bronze"]["environment"]
    assert bronze["WIKI_EVENTS_PROFILES"] == "dumps"
    assert bronze["DUMPS_CLICKHOUSE_URL"] == "http://dumps:x@clickhouse:8123/default"
    assert services["clickhouse"]["environment"]["CLICKHOUSE_DUMPS_PASSWORD"] == "x"
    # DUMPS_URL from .env wins; without the profile nothing of it runs or is built
    other = compose_config(
        {**base, "DUMPS_URL": "https://mirror.example.org/other/", "COMPOSE_PROFILES": "dumps"}
    )
    assert other.returncode == 0, other.stderr
    followers = json.loads(other.stdout)["services"]
    assert followers["dumps-mediacounts"]["environment"]["DUMPS_URL"] == (
        "https://mirror.example.org/other/"
    )
    off = compose_config({**base, "COMPOSE_PROFILES": ""})
    assert off.returncode == 0, off.stderr
    plain = json.loads(off.stdout)["services"]
    assert not DUMPS_FOLLOWERS.keys() & set(plain)
    assert plain["dbt"]["environment"]["WIKI_EVENTS_PROFILES"] == ""
    assert plain["bronze"]["environment"]["WIKI_EVENTS_PROFILES"] == ""


def test_compose_dumps_profile_users_health_and_order_behind_dbt(tmp_path: Path) -> None:
    """The dumps profile as Compose v2 renders it (the stack test runs without it): what
    runs, as whom, with which checks, in which order, read from ``docker compose config``."""
    done = compose_config({**SAMPLE_ENV, "DATA_DIR": str(tmp_path), "COMPOSE_PROFILES": "dumps"})
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    plain = {name for name, s in SERVICES.items() if "profiles" not in s}
    assert set(services) == plain | DUMPS_FOLLOWERS.keys()  # the followers, no tools
    for name in DUMPS_FOLLOWERS:
        service = services[name]
        # as the image's unprivileged user, reaching nothing but ClickHouse (as dumps) and
        # the dumps site; no port, no broker, no other password
        assert "user" not in service, name
        assert "ports" not in service, name
        env = service["environment"]
        assert "AMQP_URL" not in env and "DUMPS_CLICKHOUSE_URL" not in env, name
        assert not [k for k in env if re.search(r"PASSWORD|SECRET|HASH", k)], name
        credentials = {
            m for value in env.values() for m in re.findall(r"://([^:/@]+):[^@]*@", str(value))
        }
        assert credentials == {"dumps"}, (name, credentials)
        # its liveness is its lag (wiki-events health dumps FOLLOWER), alerted by the
        # watchdog (label wiki-events.alert-unhealthy) but never restarted by it (no
        # autoheal label): a restart cannot make the dumps site publish
        assert service["healthcheck"]["test"] == [
            "CMD",
            "wiki-events",
            "health",
            "dumps",
            DUMPS_FOLLOWERS[name],
        ], name
        labels = service.get("labels") or {}
        assert labels == {"wiki-events.alert-unhealthy": "true"}, name
        assert env["DUMPS_STALE_SECONDS"] == "x", name  # from .env (SAMPLE_ENV)
        assert service["logging"]["options"]["max-size"] == "20m", name
    # the order: clickhouse healthy -> bronze (the dumps' tables, as dumps) done -> dbt
    # healthy (its marker names the models with the dumps') -> the followers
    order = {
        name: {dep: rule["condition"] for dep, rule in (s.get("depends_on") or {}).items()}
        for name, s in services.items()
    }
    for name in DUMPS_FOLLOWERS:
        assert order[name] == {"clickhouse": "service_healthy", "dbt": "service_healthy"}
    assert order["dbt"] == {
        "clickhouse": "service_healthy",
        "bronze": "service_completed_successfully",
    }
    assert order["bronze"] == {"clickhouse": "service_healthy"}
    assert services["dbt"]["healthcheck"]["test"] == ["CMD", "wiki-events", "health", "dbt"]
    assert services["clickhouse"]["healthcheck"]["test"][:2] == ["CMD", "clickhouse-client"]
    assert services["bronze"]["restart"] == "no"
    # everything a follower waits for is itself waited for: no cycle, dbt before them
    started: list[str] = []

    def start(name: str) -> None:
        for dep in order[name]:
            if dep not in started:
                start(dep)
        if name not in started:
            started.append(name)

    for name in sorted(services):
        start(name)
    for name in DUMPS_FOLLOWERS:
        assert started.index("dbt") < started.index(name)
    assert started.index("bronze") < started.index("dbt")


@pytest.mark.slow
def test_bronze_service_creates_the_dumps_tables_only_with_the_profile(tmp_path: Path) -> None:
    """deploy/bin/bronze-migrate against the embedded engine: the live stream's tables
    always, the dumps' (ledger, visible view) only when WIKI_EVENTS_PROFILES holds dumps."""
    server = ClickHouseProcess(tmp_path / "data").start()
    try:

        def migrate(profiles: str) -> set[str]:
            env = {
                **os.environ,
                "CLICKHOUSE_URL": server.url,
                "DUMPS_CLICKHOUSE_URL": server.url,
                "BRONZE_RETENTION_DAYS": "90",
                "WIKI_EVENTS_PROFILES": profiles,
            }
            done = subprocess.run(
                [os.sys.executable, "deploy/bin/bronze-migrate"],
                cwd=ROOT,  # type: ignore[attr-defined]
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            tables = httpx.post(
                server.url,
                content="SELECT name FROM system.tables WHERE database = 'bronze' FORMAT TSV",
                timeout=30,
            )
            return set(tables.text.split())

        plain = migrate("")
        assert "wiki_raw" in plain and not {t for t in plain if t.startswith("dumps_")}
        with_dumps = migrate("dumps")
        assert {
            "dumps_files",
            "dumps_visible",
            "dumps_rejects",
            "pageviews",
            "projectviews",
            "mediacounts",
        } <= with_dumps
        assert migrate("dumps") == with_dumps  # again: nothing changes
    finally:
        server.stop()


def test_env_values_reach_compose_literally_single_quoted(tmp_path: Path) -> None:
    """The defect of issue 13: an unquoted bcrypt hash is cut by Compose v2's interpolation;
    envfile.py's single quotes keep it whole. Both shown with the real Compose v2."""
    bcrypt = "$2a$10$abcdefghijABCDEFGHIJ.abcdefghijABCDEFGHIJ0123456789ab"
    env_file = tmp_path / ".env"
    values = {**SAMPLE_ENV, "DATA_DIR": str(tmp_path), "DASH_PASSWORD_HASH": bcrypt}
    env_file.write_text(ENVFILE.render(values))
    ok = compose_config({"COMPOSE_ENV_FILES": str(env_file)})
    assert ok.returncode == 0, ok.stderr
    caddy = json.loads(ok.stdout)["services"]["caddy"]["environment"]
    # `config` prints a literal $ as $$ (ready to be read again); the value is the hash
    assert caddy["DASH_PASSWORD_HASH"].replace("$$", "$") == bcrypt
    # the old, unquoted way loses the hash's tail (Compose interpolates $abcdefghij...)
    env_file.write_text(env_file.read_text().replace(f"'{bcrypt}'", bcrypt))
    cut = compose_config({"COMPOSE_ENV_FILES": str(env_file)})
    if cut.returncode == 0:
        got = json.loads(cut.stdout)["services"]["caddy"]["environment"]["DASH_PASSWORD_HASH"]
        assert got.replace("$$", "$") != bcrypt


def test_every_service_of_our_image_runs_under_an_init() -> None:
    """Our commands (and dbt-service's and backup's shell loops) are not written to be
    PID 1, which the kernel shields from a signal it has no handler for: docker-init is."""
    ours = [name for name, service in SERVICES.items() if service["image"].startswith("wiki-")]
    assert {"reader", "loader", "dbt", "dash", "watchdog", "backup"} <= set(ours), ours
    assert [name for name in ours if SERVICES[name].get("init") is not True] == []


def test_compose_images_are_pinned_and_clickhouse_is_an_lts() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        if "build" in service:
            assert image.startswith("wiki-events:"), name
            continue
        repo, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+(\.\d+)+(-[a-z-]+)?", tag), f"{name}: {image} is not pinned"
    # ClickHouse LTS releases are the .3 and .8 of each year
    tag = SERVICES["clickhouse"]["image"].split(":")[1]
    assert tag.split(".")[1] in ("3", "8"), tag
    # RabbitMQ 4.x (3.13 is out of community support)
    assert SERVICES["rabbitmq"]["image"].split(":")[1].startswith("4.")
    dockerfile = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)", dockerfile, re.M)
    assert re.search(r":\d+\.\d+\.\d+-", base), base
    assert re.findall(r"^FROM \$\{BASE_IMAGE\}", dockerfile, re.M)
    assert re.search(r"^USER wiki$", dockerfile, re.M)  # non-root
    assert "syntax=docker/dockerfile" not in dockerfile  # builds without BuildKit's frontend


# the watchdog, the backup loop and dbt report their own failures (alerts); the rest must
# have a liveness healthcheck that the watchdog acts on
SELF_REPORTING = {"watchdog", "backup", "dbt"}


def test_compose_health_restart_logging_and_ordering() -> None:
    for name in SERVICES:
        service = SERVICES[name]
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule["condition"] in ("service_healthy", "service_completed_successfully")
            assert dependency in SERVICES, (name, dependency)
        if long_running(name):
            assert service["restart"] == "unless-stopped", name
            assert service["logging"]["options"]["max-size"], name
            if name not in SELF_REPORTING:
                assert "test" in service["healthcheck"], name
                assert service["labels"]["wiki-events.autoheal"] == "true", name
    assert SERVICES["loader"]["depends_on"]["dbt"]["condition"] == "service_healthy"
    assert SERVICES["rabbitmq"]["depends_on"]["rabbitmq-definitions"]["condition"] == (
        "service_completed_successfully"
    )
    # liveness, not a ping: the reader's and the loader's checks are wiki-events health
    assert SERVICES["reader"]["healthcheck"]["test"][1:] == ["wiki-events", "health", "reader"]
    assert SERVICES["loader"]["healthcheck"]["test"][1:] == ["wiki-events", "health", "loader"]
    # the watchdog probes the reader's and the loader's dependencies, with no credentials
    watched = SERVICES["watchdog"]["environment"]
    assert (watched["AMQP_URL"], watched["CLICKHOUSE_URL"]) == (
        "amqp://rabbitmq:5672/",
        "http://clickhouse:8123/",
    )
    # the loader and the dashboard start only after dbt built this version's models, also
    # when Docker restarts them at boot without depends_on
    assert SERVICES["loader"]["entrypoint"][0] == "/app/deploy/bin/after-dbt"
    assert SERVICES["dash"]["entrypoint"][0] == "/app/deploy/bin/after-dbt"
    assert SERVICES["clickhouse"]["entrypoint"][0] == "/wiki-events/require-volume"
    assert "volumes" not in COMPOSE  # no named volume: all state on the data volume


def test_compose_state_lives_on_the_data_volume_never_created_on_the_root_disk() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict) and str(volume["source"]).startswith("${DATA_DIR"):
                assert volume["type"] == "bind", name
                assert volume["bind"]["create_host_path"] is False, name
    targets = {
        (n, v["target"])
        for n, s in SERVICES.items()
        for v in s.get("volumes", [])
        if isinstance(v, dict) and str(v["source"]).startswith("${DATA_DIR")
    }
    for needed in (
        ("clickhouse", "/var/lib/clickhouse"),
        ("rabbitmq", "/var/lib/rabbitmq"),
        ("reader", "/data"),
        ("caddy", "/data"),
        ("dbt", "/dbt"),
    ):
        assert needed in targets, needed


def test_compose_publishes_only_the_proxy_and_no_database_or_broker() -> None:
    published = {name: s.get("ports", []) for name, s in SERVICES.items() if s.get("ports")}
    assert sorted(published["caddy"]) == [
        "${CLICKHOUSE_HTTPS_PORT:-8443}:8443",
        "${HTTPS_PORT:-443}:443",
        "${HTTP_PORT:-80}:80",
    ]
    for name, ports in published.items():
        if name == "caddy":
            continue
        for port in ports:  # anything else only on the VM's loopback
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "ports" not in SERVICES["clickhouse"]
    assert all(not str(p).endswith(":5672") for p in SERVICES["rabbitmq"].get("ports", []))


def test_compose_holds_no_secret_and_env_example_is_envfiles_own() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert "guest" not in text
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if re.search(r"PASSWORD|SECRET|TOKEN|HASH", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:[?-][^}]*)?\}", value), (name, key)
            for credentials in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert credentials.startswith("${"), (name, key)
    example = (ROOT / ".env.example").read_text()
    assert example == ENVFILE.example()  # one code path: envfile.py writes it
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    used = set(INTERPOLATION.findall(text)) - {
        "HTTP_PORT",
        "HTTPS_PORT",
        "CLICKHOUSE_HTTPS_PORT",
        "RABBITMQ_UI_PORT",
        "COMPOSE_PROJECT_NAME",
    }
    assert used <= listed, sorted(used - listed)
    for line in example.splitlines():  # secrets are left empty in the example
        key, _, value = line.partition("=")
        if re.search(r"PASSWORD|SECRET|HASH", key) and not line.startswith("#"):
            assert value == "''", key


@pytest.mark.slow
def test_envfile_init_makes_secrets_once_and_rotate_rotates(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"DOMAIN": "wiki.example.org", "DATA_DIR": "/mnt/x"}))
    env_file = tmp_path / ".env"

    run = run_envfile

    assert run("init", str(settings), str(env_file)).returncode == 0
    first = ENVFILE.parse(env_file.read_text())
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert all(len(first[name]) >= 32 for name in ENVFILE.SECRETS)
    assert first["DASH_PASSWORD_HASH"].startswith("$2")
    assert first["DOMAIN"] == "wiki.example.org"
    # again (a reboot, a replaced server with the old volume): the secrets stay
    settings.write_text(json.dumps({"DOMAIN": "new.example.org", "DATA_DIR": "/mnt/x"}))
    assert run("init", str(settings), str(env_file)).returncode == 0
    again = ENVFILE.parse(env_file.read_text())
    assert {n: again[n] for n in ENVFILE.SECRETS} == {n: first[n] for n in ENVFILE.SECRETS}
    assert again["DOMAIN"] == "new.example.org"
    # rotation replaces what it is asked to, and keeps the hash in step
    assert run("rotate", str(env_file), "DASH_PASSWORD").returncode == 0
    rotated = ENVFILE.parse(env_file.read_text())
    assert rotated["DASH_PASSWORD"] != first["DASH_PASSWORD"]
    assert rotated["DASH_PASSWORD_HASH"] != first["DASH_PASSWORD_HASH"]
    assert rotated["CLICKHOUSE_DBT_PASSWORD"] == first["CLICKHOUSE_DBT_PASSWORD"]
    # the dumps user's password: made at first boot like the others, rotated alone or with all
    assert "CLICKHOUSE_DUMPS_PASSWORD" in ENVFILE.SECRETS
    assert len(first["CLICKHOUSE_DUMPS_PASSWORD"]) >= 32
    assert rotated["CLICKHOUSE_DUMPS_PASSWORD"] == first["CLICKHOUSE_DUMPS_PASSWORD"]
    assert run("rotate", str(env_file), "CLICKHOUSE_DUMPS_PASSWORD").returncode == 0
    dumps_rotated = ENVFILE.parse(env_file.read_text())
    assert dumps_rotated["CLICKHOUSE_DUMPS_PASSWORD"] != first["CLICKHOUSE_DUMPS_PASSWORD"]
    assert dumps_rotated["DASH_PASSWORD"] == rotated["DASH_PASSWORD"]
    rotated = dumps_rotated
    link = tmp_path / "checkout.env"  # /opt/wiki-events/.env -> /mnt/wiki-events/.env
    link.symlink_to(env_file)
    assert run("rotate", str(link)).returncode == 0
    assert link.is_symlink()  # the volume's file was rotated, not the link replaced
    everything = ENVFILE.parse(env_file.read_text())
    assert all(everything[n] != rotated[n] for n in ENVFILE.SECRETS)
    # what cannot be written literally is refused, not mangled
    bad = run("set", str(env_file), "ALERT_WEBHOOK_URL=it's")
    assert bad.returncode == 1 and "single quote" in bad.stderr
    assert run("set", str(env_file), "BACKUP_S3_ACCESS_KEY_ID=AK$1x").returncode == 0
    assert ENVFILE.parse(env_file.read_text())["BACKUP_S3_ACCESS_KEY_ID"] == "AK$1x"
    # a secret given by name only is read from stdin (the terminal, without echo)
    asked = subprocess.run(
        [
            os.sys.executable,
            "deploy/envfile.py",
            "set",
            str(env_file),
            "BACKUP_S3_SECRET_ACCESS_KEY",
            "BACKUP_EVERY=3600",
        ],  # type: ignore[attr-defined]
        cwd=ROOT,
        input="s3/secret+key\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert asked.returncode == 0, asked.stderr
    values = ENVFILE.parse(env_file.read_text())
    assert (values["BACKUP_S3_SECRET_ACCESS_KEY"], values["BACKUP_EVERY"]) == (
        "s3/secret+key",
        "3600",
    )
    nothing = run("set", str(env_file), "BACKUP_S3_SECRET_ACCESS_KEY")  # stdin empty
    assert nothing.returncode == 1 and "no value for BACKUP_S3_SECRET_ACCESS_KEY" in nothing.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"DOMIAN": "typo"}))
    refused = run("init", str(unknown), str(tmp_path / "other.env"))
    assert refused.returncode == 1 and "DOMIAN" in refused.stderr


def test_envfile_init_merges_keeping_what_the_operator_set_and_blanking_nothing(
    tmp_path: Path,
) -> None:
    """deploy.md has the operator set the bucket and a longer retention by hand, then run
    init with terraform's settings at every upgrade: init keeps theirs and says so."""
    env_file = tmp_path / ".env"
    filled = {name: "x" * 32 for name in ENVFILE.SECRETS} | {"DASH_PASSWORD_HASH": "$2a$14$h"}
    ENVFILE.write(env_file, filled | {"DOMAIN": "wiki.example.org"})
    settings = tmp_path / "settings.json"
    terraform = {"DOMAIN": "wiki.example.org", "BACKUP_S3_URL": "", "SILVER_RETENTION_DAYS": "90"}
    settings.write_text(json.dumps(terraform))

    run = run_envfile

    url = "https://fsn1.your-objectstorage.com/b/wiki-events"
    assert (
        run("set", str(env_file), f"BACKUP_S3_URL={url}", "SILVER_RETENTION_DAYS=180").returncode
        == 0
    )
    assert run("set", str(env_file), "BACKUP_S3_SECRET_ACCESS_KEY", stdin="k\n").returncode == 0
    done = run("init", str(settings), str(env_file))
    assert done.returncode == 0, done.stderr
    values = ENVFILE.parse(env_file.read_text())
    assert (values["BACKUP_S3_URL"], values["SILVER_RETENTION_DAYS"]) == (url, "180")
    assert values["BACKUP_S3_SECRET_ACCESS_KEY"] == "k"
    assert {n: values[n] for n in ENVFILE.SECRETS} == {n: filled[n] for n in ENVFILE.SECRETS}
    assert "SILVER_RETENTION_DAYS: kept '180', set by hand; the settings say '90'" in done.stderr
    assert "envfile.py release .env BACKUP_S3_URL" in done.stderr
    # a setting terraform changes and nobody set by hand is taken, and said
    settings.write_text(json.dumps(terraform | {"DOMAIN": "new.example.org"}))
    done = run("init", str(settings), str(env_file))
    assert ENVFILE.parse(env_file.read_text())["DOMAIN"] == "new.example.org"
    assert "DOMAIN: 'wiki.example.org' -> 'new.example.org' (settings)" in done.stderr
    # released, the settings' value wins at the next init
    assert run("release", str(env_file), "SILVER_RETENTION_DAYS").returncode == 0
    assert run("init", str(settings), str(env_file)).returncode == 0
    values = ENVFILE.parse(env_file.read_text())
    assert (values["SILVER_RETENTION_DAYS"], values["BACKUP_S3_URL"]) == ("90", url)
    # a .env from before the record: an empty setting still blanks nothing
    legacy = ENVFILE.parse(env_file.read_text())
    del legacy[ENVFILE.SET_BY_HAND]
    merged, said = ENVFILE.merge(legacy, terraform)
    assert merged["BACKUP_S3_URL"] == url and any("blanks nothing" in line for line in said)
    # the version is the stack's (the commit it started), never the settings'
    merged, said = ENVFILE.merge(
        {"WIKI_EVENTS_VERSION": "0a1b2c3d4e5f"}, {"WIKI_EVENTS_VERSION": "main"}
    )
    assert merged["WIKI_EVENTS_VERSION"] == "0a1b2c3d4e5f" and "deploy/bin/stack" in said[0]
    # the record itself is not a name one sets
    assert run("set", str(env_file), f"{ENVFILE.SET_BY_HAND}=DOMAIN").returncode == 1


# -- terraform -----------------------------------------------------------------------------


def test_terraform_variables_are_typed_described_and_the_token_sensitive() -> None:
    tf = terraform()
    variables = {name: body for block in tf["variable"] for name, body in block.items()}
    assert {
        "hcloud_token",
        "server_type",
        "location",
        "ssh_public_keys",
        "domain",
        "admin_cidrs",
    } <= set(variables)
    for name, body in variables.items():
        assert body.get("type"), f"{name} has no type"
        assert len(body.get("description", "")) > 10, f"{name} is not described"
    for secret in ("hcloud_token", "alert_webhook_url", "heartbeat_url"):
        assert variables[secret]["sensitive"] is True, secret
    assert variables["server_type"]["default"] == "cx23"  # the current CX line (cx22/32 are gone)
    providers = tf["terraform"][0]["required_providers"][0]
    assert re.fullmatch(r"~> \d+\.\d+\.\d+", providers["hcloud"]["version"])
    major, minor = map(int, providers["hcloud"]["version"][3:].split(".")[:2])
    # the newest release found (1.70.0); datacenter gone from servers and primary IPs (1.67)
    assert (major, minor) >= (1, 70)
    guide = (ROOT / "deploy.md").read_text()
    assert f"hetznercloud/hcloud {providers['hcloud']['version']}" in guide  # one pin
    assert "random" not in providers  # no secret is made by terraform any more
    assert providers["hcloud"]["source"] == "hetznercloud/hcloud"
    outputs = {name: body for block in tf["output"] for name, body in block.items()}
    assert {"ipv4_address", "ipv6_address", "dashboard_url"} <= set(outputs)
    assert all(o.get("description") for o in outputs.values())


def test_terraform_fails_at_plan_time_on_a_wrong_type_or_location_and_keeps_no_secret() -> None:
    tf = terraform()
    data = {
        kind: body
        for block in tf["data"]
        for kind, named in block.items()
        for body in named.values()
    }
    # data sources are read during plan: an unknown type or location stops the plan
    assert data["hcloud_server_type"]["name"] == "${var.server_type}"
    assert data["hcloud_location"]["name"] == "${var.location}"
    resources = {
        (kind, name): body
        for block in tf["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }
    server = resources[("hcloud_server", "wiki")]
    assert server["server_type"] == "${data.hcloud_server_type.selected.name}"
    assert server["location"] == "${data.hcloud_location.selected.name}"
    # the preflight carries the checks, and every resource made first waits for it
    conditions = str(resources[("terraform_data", "preflight")]["lifecycle"])
    assert "local.server_type_here != null" in conditions and "is_deprecated" in conditions
    assert "length(var.ssh_public_keys) + length(var.existing_ssh_key_names) > 0" in conditions
    for first in ("hcloud_ssh_key", "hcloud_firewall", "hcloud_volume", "hcloud_primary_ip"):
        (body,) = [b for (kind, _), b in resources.items() if kind == first]
        assert body["depends_on"] == ["${terraform_data.preflight}"], first
    main = (TERRAFORM / "main.tf").read_text()
    assert "data.hcloud_server_type.selected.locations" in main
    # addresses that outlive the server
    addresses = resources[("hcloud_primary_ip", "address")]
    assert addresses["for_each"] == '${toset(["ipv4", "ipv6"])}'
    assert addresses["auto_delete"] is False
    assert 'hcloud_primary_ip.address["ipv4"].id' in str(server["public_net"])
    # every setting terraform sends is one envfile.py init accepts (it refuses others);
    # the version is not one: the server runs the commit it has checked out
    settings = next(block["settings"] for block in tf["locals"] if "settings" in block)
    assert set(settings) <= set(ENVFILE.SETTINGS) and {"DOMAIN", "DATA_DIR"} <= set(settings)
    assert "WIKI_EVENTS_VERSION" not in settings
    text = "\n".join(p.read_text() for p in TERRAFORM.glob("*.tf"))
    assert "random_password" not in text and "bcrypt(" not in text
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    assert re.search(r"^\s*hcloud_token\s*=", example, re.M) is None  # TF_VAR_ wins
    assert re.search(r'^server_type\s*=\s*"cx23"', example, re.M)


def test_terraform_firewall_opens_web_to_all_and_ssh_to_admins_only() -> None:
    tf = terraform()
    resources = [r for block in tf["resource"] for r in block.items()]
    firewalls = [
        body for kind, named in resources if kind == "hcloud_firewall" for body in named.values()
    ]
    assert len(firewalls) == 1
    rules = {
        (r["direction"], r["protocol"], r["port"]): r["source_ips"] for r in firewalls[0]["rule"]
    }
    everyone = ["0.0.0.0/0", "::/0"]
    assert rules == {
        ("in", "tcp", "80"): everyone,
        ("in", "tcp", "443"): everyone,
        ("in", "tcp", "8443"): "${var.analyst_cidrs}",
        ("in", "tcp", "22"): "${var.admin_cidrs}",
    }
    servers = [
        body for kind, named in resources if kind == "hcloud_server" for body in named.values()
    ]
    (server,) = servers
    assert server["delete_protection"] == server["rebuild_protection"] == "${var.protection}"
    assert "hcloud_firewall.web.id" in str(server["firewall_ids"])
    assert "templatefile(" in server["user_data"]
    volumes = [
        body for kind, named in resources if kind == "hcloud_volume" for body in named.values()
    ]
    assert volumes and volumes[0]["delete_protection"] == "${var.protection}"


# Arguments of hcloud_server the provider applies only by replacing the server: ForceNew in
# hetznercloud/terraform-provider-hcloud v1.68.0, internal/server/resource.go (read there;
# server_type, name, labels, firewall_ids, protection and public_net are updated in place)
SERVER_FORCE_NEW = {"image", "location", "user_data", "ssh_keys"}


def test_terraform_never_replaces_the_server_or_detaches_the_volume_on_an_ordinary_apply() -> None:
    """A settings change used to replace the server: the volume was detached under the
    running stack, then the protected server's delete failed. Now what would replace it is
    ignored (settings go over SSH) or refused at plan time by prevent_destroy."""
    declared = resources(terraform())
    server = declared[("hcloud_server", "wiki")]
    (lifecycle,) = server["lifecycle"]
    ignored = set(lifecycle["ignore_changes"])
    replacing = (SERVER_FORCE_NEW & set(server)) - ignored
    # location: the volume and the addresses live there too: moving is a new deployment,
    # refused below (prevent_destroy on the attachment and the volume)
    assert replacing == {"location"}, replacing
    assert "server_type" not in ignored  # changed in place (the provider powers off)
    (attachment,) = declared[("hcloud_volume_attachment", "data")]["lifecycle"]
    assert attachment["prevent_destroy"] is True  # no plan detaches the volume
    (volume,) = declared[("hcloud_volume", "data")]["lifecycle"]
    assert volume["prevent_destroy"] is True
    assert server["shutdown_before_deletion"] is True  # a deliberate replacement is clean
    # the settings reach a running server without user-data: over SSH, after the first
    # boot and the attachment, again whenever the server or a setting changes
    settings = declared[("terraform_data", "server_settings")]
    assert settings["depends_on"] == ["${hcloud_volume_attachment.data}"]
    assert settings["triggers_replace"]["server"] == "${hcloud_server.wiki.id}"
    assert settings["triggers_replace"]["settings"] == "${local.settings}"
    (connection,) = settings["connection"]
    assert connection["user"] == "root"
    assert connection["host"] == '${hcloud_primary_ip.address["ipv4"].ip_address}'


def test_terraform_requires_an_alert_destination_and_a_heartbeat_unless_declined() -> None:
    """apply refuses without an alert webhook or a heartbeat URL unless the operator
    writes "none"; the validation's own regex, taken from variables.tf, judges samples."""
    variables = {n: b for block in terraform()["variable"] for n, b in block.items()}
    for name in ("alert_webhook_url", "heartbeat_url"):
        body = variables[name]
        assert body["default"] == "" and body["sensitive"] is True
        (rule,) = body["validation"]
        condition = rule["condition"]
        assert f'var.{name} == "none"' in condition, condition
        (pattern,) = re.findall(r'regex\("(.+?)", var\.', condition)
        pattern = pattern.replace("\\\\", "\\")

        def accepted(value: str, pattern: str = pattern) -> bool:
            return value == "none" or re.search(pattern, value) is not None

        assert not accepted("")  # the default: refused, the message says why
        assert accepted("none") and accepted("https://ntfy.sh/wiki-events-8f3a1c")
        assert not accepted("http://ntfy.sh/topic")  # the token would travel in clear
        assert not accepted("https://x.example/it's")  # envfile.py writes no single quote
        assert not accepted("https://x.example/a b")
        assert '\\"none\\"' in rule["error_message"] and name in rule["error_message"]
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    # the example does not decide for the operator: left unset, apply asks for a choice
    assert re.search(r"^(alert_webhook_url|heartbeat_url)\s*=", example, re.M) is None


def test_terraform_keeps_the_alert_secrets_out_of_user_data_and_the_state() -> None:
    tf = terraform()
    locals_ = {k: v for block in tf["locals"] for k, v in block.items()}
    assert not {"ALERT_WEBHOOK_URL", "HEARTBEAT_URL"} & set(locals_["settings"])
    assert set(locals_["secret_settings"]) == {"ALERT_WEBHOOK_URL", "HEARTBEAT_URL"}
    server = resources(tf)[("hcloud_server", "wiki")]
    assert "secret" not in server["user_data"] and "alert" not in server["user_data"]
    settings = resources(tf)[("terraform_data", "server_settings")]
    # only a digest in the state (triggers_replace is stored there), to notice a change
    assert settings["triggers_replace"]["secrets"] == (
        "${sha256(jsonencode(local.secret_settings))}"
    )
    uploads = [p["file"] for p in settings["provisioner"] if "file" in p]
    secret_upload = next(u for u in uploads if "secret_settings" in u["content"])
    assert secret_upload["destination"].startswith("/root/")  # root's own folder (700)
    assert secret_upload["content"] == (
        "${local.secret_settings.ALERT_WEBHOOK_URL}\\n${local.secret_settings.HEARTBEAT_URL}\\n"
    )
    # the two URLs become the server's ALERT_WEBHOOK_URL and HEARTBEAT_URL (envfile.py)
    assert {"ALERT_WEBHOOK_URL", "HEARTBEAT_URL"} <= set(ENVFILE.SETTINGS)


def test_terraform_uses_ssh_keys_already_in_the_project_instead_of_failing() -> None:
    """Hetzner refuses a second copy of a public key: one already in the project (under
    another name) is used as it is; keys named in existing_ssh_key_names are looked up."""
    tf = terraform()
    data = {
        (k, n): b for block in tf["data"] for k, named in block.items() for n, b in named.items()
    }
    assert ("hcloud_ssh_keys", "project") in data
    assert data[("hcloud_ssh_key", "named")] == {
        "for_each": "${toset(var.existing_ssh_key_names)}",
        "name": "${each.value}",
    }
    declared = resources(tf)
    assert declared[("hcloud_ssh_key", "admin")]["for_each"] == "${local.new_ssh_keys}"
    keys = declared[("hcloud_server", "wiki")]["ssh_keys"]
    for source in ("hcloud_ssh_key.admin", "local.reused_ssh_keys", "data.hcloud_ssh_key.named"):
        assert source in keys, source
    locals_ = {k: v for block in tf["locals"] for k, v in block.items()}
    reused = locals_["reused_ssh_keys"]
    # the same key body, under a name this configuration would not have given it
    assert "k.body == body" in reused and 'k.name != "${var.name}-${name}"' in reused
    assert "!contains(keys(local.reused_ssh_keys), name)" in locals_["new_ssh_keys"]
    # the key's body is its type and base64, the comment dropped (terraform's regex)
    (pattern,) = set(re.findall(r'regex\("(.+?)"', locals_["ssh_key_bodies"]))
    pattern = pattern.replace("\\\\", "\\")
    body = " ".join(re.match(pattern, "ssh-ed25519 AAAAC3Nz alice@laptop").groups())  # type: ignore[union-attr]
    assert body == "ssh-ed25519 AAAAC3Nz"
    assert " ".join(re.match(pattern, "ssh-ed25519  AAAAC3Nz").groups()) == body  # type: ignore[union-attr]


def test_terraform_s3_backend_recipe_has_what_a_non_aws_endpoint_needs() -> None:
    """backend.tf.example: Terraform's s3 backend against Hetzner Object Storage."""
    with open(TERRAFORM / "backend.tf.example") as f:
        recipe = plain(hcl2.load(f))
    (backend,) = recipe["terraform"][0]["backend"]
    s3 = backend["s3"]
    assert s3["endpoints"] == {"s3": "https://fsn1.your-objectstorage.com"}
    assert s3["region"] == "fsn1"
    for setting in (
        "use_path_style",  # https://HOST/BUCKET
        "skip_credentials_validation",  # no STS
        "skip_region_validation",  # fsn1 is no AWS region
        "skip_requesting_account_id",  # no IAM / STS
        "skip_metadata_api_check",  # not on EC2
        "skip_s3_checksum",  # no x-amz-checksum-* headers
        "use_lockfile",  # a lock beside the state (terraform >= 1.10)
    ):
        assert s3[setting] is True, setting
    assert {"bucket", "key"} <= set(s3)
    assert not {"access_key", "secret_key", "endpoint", "force_path_style"} & set(s3)


# the remote-exec script, as terraform makes it: the inline lines joined by newlines,
# with its default shebang (remote-exec's generateScripts, the ssh communicator's
# UploadScript), uploaded and run as root
SECRET_URL = "https://ntfy.example.org/wiki-events-SECRET-7c41d9"
HEARTBEAT = "https://hc-ping.example.org/SECRET-5d0f6e2a"
SETTINGS_PUSH_STAND_INS = {
    "cloud-init": 'exit "$CLOUD_INIT_RC"',
    "install": f'exec {real("install")} "$@"',
    "python3": 'exec /usr/bin/python3 "$@"',
    "rm": f'exec {real("rm")} "$@"',
}


class SettingsPush:
    """terraform's remote-exec on a stand-in server: root's home with the two uploads, the
    checkout's envfile.py, the volume's .env made by it, every program a stand-in."""

    def __init__(self, tmp_path: Path, secrets: str, cloud_init_rc: int) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.root.mkdir(parents=True)
        settings = {"DOMAIN": "new.example.org", "DATA_DIR": "/mnt/wiki-events"}
        (self.root / "wiki-events-settings.json").write_text(json.dumps(settings))
        (self.root / "wiki-events-secret-settings").write_text(secrets)
        self.opt = tmp_path / "opt"
        deploy = self.opt / "wiki-events" / "deploy"
        (deploy / "bin").mkdir(parents=True)
        (deploy / "envfile.py").write_text((ROOT / "deploy" / "envfile.py").read_text())
        stand_ins(deploy / "bin", {"stack": ""})
        self.etc = tmp_path / "etc-wiki-events"
        self.etc.mkdir()
        self.mnt = tmp_path / "mnt"
        self.env_file = self.mnt / "wiki-events" / ".env"
        self.env_file.parent.mkdir(parents=True)
        self.first_env = {"DOMAIN": "old.example.org", "DATA_DIR": "/mnt/wiki-events"}
        hasher = stand_ins(tmp_path / "hasher", {"hash": "echo '$2a$14$standin'"}) / "hash"
        previous = os.environ.get("WIKI_EVENTS_HASHER")
        os.environ["WIKI_EVENTS_HASHER"] = str(hasher)
        try:
            self.before = ENVFILE.init(self.first_env, self.env_file)  # the first boot's
        finally:
            if previous is None:
                del os.environ["WIKI_EVENTS_HASHER"]
            else:
                os.environ["WIKI_EVENTS_HASHER"] = previous
        self.script = tmp_path / "terraform_1234.sh"
        self.script.write_text(settings_push_script())
        self.script.chmod(0o777)
        self.log = tmp_path / "calls.log"
        self.env = {
            "PATH": str(stand_ins(tmp_path / "bin", SETTINGS_PUSH_STAND_INS)),
            "STANDIN_LOG": str(self.log),
            "CLOUD_INIT_RC": str(cloud_init_rc),
            "HOME": "/root",
        }

    def run(self) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
        done = run_sandboxed(
            [str(self.script)],
            mounts={
                "/root": self.root,
                "/opt": self.opt,
                "/mnt": self.mnt,
                "/etc/wiki-events": self.etc,
            },
            scratch=self.tmp / "scratch",
            env=self.env,
        )
        return done, logged(self.log)


def test_terraform_sends_the_settings_over_ssh_the_secrets_on_stdin_only(
    tmp_path: Path,
) -> None:
    push = SettingsPush(tmp_path, f"{SECRET_URL}\n{HEARTBEAT}\n", cloud_init_rc=0)
    done, calls = push.run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert [c[0] for c in calls] == ["cloud-init", "install", "python3", "python3", "stack", "rm"]
    assert calls[0] == ["cloud-init", "status", "--wait"]
    assert calls[2][1:] == [
        "deploy/envfile.py",
        "init",
        "/etc/wiki-events/settings.json",
        "/mnt/wiki-events/.env",
    ]
    assert calls[3][1:] == [
        "deploy/envfile.py",
        "set",
        "/mnt/wiki-events/.env",
        "ALERT_WEBHOOK_URL",
        "HEARTBEAT_URL",
    ]
    assert calls[4] == ["stack", "up"]  # the services take the new values
    # the secrets reached .env by stdin: on no command line of anything the script ran
    assert SECRET_URL not in push.log.read_text() and HEARTBEAT not in push.log.read_text()
    after = ENVFILE.parse(push.env_file.read_text())
    assert (after["ALERT_WEBHOOK_URL"], after["HEARTBEAT_URL"]) == (SECRET_URL, HEARTBEAT)
    assert after["DOMAIN"] == "new.example.org"  # the new settings, through envfile init
    assert all(after[n] == push.before[n] for n in ENVFILE.SECRETS)  # the secrets kept
    assert oct(push.env_file.stat().st_mode & 0o777) == "0o600"
    assert json.loads((push.etc / "settings.json").read_text())["DOMAIN"] == "new.example.org"
    assert list(push.root.iterdir()) == []  # both uploads removed

    # "none" for both (the operator wants none): empty values, still off every command line
    nothing = SettingsPush(tmp_path / "none", "\n\n", cloud_init_rc=0)
    done, _ = nothing.run()
    assert done.returncode == 0, done.stderr
    values = ENVFILE.parse(nothing.env_file.read_text())
    assert (values["ALERT_WEBHOOK_URL"], values["HEARTBEAT_URL"]) == ("", "")


def test_terraform_settings_push_stops_at_a_failed_first_boot_or_step_and_leaves_no_secret(
    tmp_path: Path,
) -> None:
    # cloud-init says the first boot failed (its runcmd stopped at the volume guard, say)
    failed = SettingsPush(tmp_path / "failed", f"{SECRET_URL}\n{HEARTBEAT}\n", cloud_init_rc=1)
    done, calls = failed.run()
    assert done.returncode == 1
    assert "wiki-events: the first boot failed" in done.stderr
    assert [c[0] for c in calls] == ["cloud-init", "rm"]  # nothing else ran
    assert list(failed.root.iterdir()) == []  # the secret did not stay behind
    assert SECRET_URL not in failed.env_file.read_text()
    # a degraded boot (cloud-init >= 23.4 exits 2 on recoverable errors) is a finished one
    degraded = SettingsPush(tmp_path / "degraded", f"{SECRET_URL}\n{HEARTBEAT}\n", 2)
    done, calls = degraded.run()
    assert done.returncode == 0, done.stderr
    assert calls[-2] == ["stack", "up"]
    # a step that fails (envfile.py refuses a value it cannot write) stops the rest
    refused = SettingsPush(tmp_path / "refused", "https://x.example/it's\n\n", cloud_init_rc=0)
    done, calls = refused.run()
    assert done.returncode != 0 and "single quote" in done.stderr
    assert "stack" not in [c[0] for c in calls]
    assert list(refused.root.iterdir()) == []


def test_cloud_init_renders_and_passes_cloud_inits_schema(tmp_path: Path) -> None:
    main = (TERRAFORM / "main.tf").read_text()
    call = main[main.index("templatefile(") : main.index("})", main.index("templatefile("))]
    assert set(re.findall(r"^\s+(\w+)\s+=", call, re.M)) == set(USER_DATA_SAMPLE)
    rendered = tmp_path / "user-data.yaml"
    rendered.write_text(render_user_data(USER_DATA_SAMPLE))
    ok = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = rendered.read_text()
    assert "systemctl enable --now wiki-events.service" in text
    assert "deploy/envfile.py init /etc/wiki-events/settings.json /mnt/wiki-events/.env" in text
    assert "deploy/bin/prepare-volume /mnt/wiki-events" in text
    assert re.search(r"PASSWORD|SECRET|WEBHOOK|HEARTBEAT|random_password|bcrypt", text) is None
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("package_update: true", "package_update: 7"))
    refused = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0  # the validator does check


# -- the first boot, as cloud-init runs it ----------------------------------------------

DEVICE = "/mnt/test-devices/scsi-0HC_Volume_1234567"  # where the test's volume appears
FIRST_BOOT = {**USER_DATA_SAMPLE, "volume_device": DEVICE}
# the programs runcmd calls, each a stand-in that logs its argv; `sh` and `grep` then run
# the real one (so each `sh -c` step runs its own commands through the stand-ins, and the
# fstab check reads the test's fstab); `mountpoint` answers as $VOLUME says; `git clone`
# lays out a checkout whose deploy/bin/prepare-volume is a stand-in too
FIRST_BOOT_STAND_INS = {
    "sh": 'exec /bin/sh "$@"',
    "grep": f'exec {real("grep")} "$@"',
    "mountpoint": '[ "$VOLUME" = mounted ]',
    "git": (
        '[ "$1" = clone ] || exit 0\n'
        "for dest; do :; done\n"
        f'{real("mkdir")} -p "$dest/.git" "$dest/deploy/bin"\n'
        f'{real("cp")} "$CHECKOUT_STAND_INS/prepare-volume" "$dest/deploy/bin/"'
    ),
    **{name: "" for name in ("mkdir", "mount", "systemctl", "python3", "ln", "cp", "sleep")},
}


class FirstBoot:
    """A stand-in server for runcmd: its /opt, /mnt and /etc/fstab are the test's folders
    (kept from one boot to the next, as a server's disk is), every program a stand-in."""

    def __init__(self, tmp_path: Path, script: str) -> None:
        self.tmp = tmp_path
        self.scripts = scripts_folder(script, tmp_path / "instance" / "scripts")
        self.bin = stand_ins(tmp_path / "bin", FIRST_BOOT_STAND_INS)
        checkout = stand_ins(tmp_path / "checkout-stand-ins", {"prepare-volume": ""})
        self.fstab = tmp_path / "fstab"
        self.fstab.write_text("# the image's own fstab\n")
        self.opt, self.mnt = tmp_path / "opt", tmp_path / "mnt"
        self.opt.mkdir()
        self.mnt.mkdir()
        self.log = tmp_path / "calls.log"
        self.env = {
            "PATH": str(self.bin),
            "STANDIN_LOG": str(self.log),
            "CHECKOUT_STAND_INS": str(checkout),
        }
        self.runs = 0

    def attach_volume(self) -> None:
        device = self.mnt / "test-devices" / "scsi-0HC_Volume_1234567"
        device.parent.mkdir(parents=True, exist_ok=True)
        device.touch()

    def boot(self, volume: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
        """Run the scripts folder as scripts_user does; the calls of this run only."""
        self.log.unlink(missing_ok=True)
        self.runs += 1
        done = run_sandboxed(
            runparts_argv(self.scripts),
            mounts={"/etc/fstab": self.fstab, "/opt": self.opt, "/mnt": self.mnt},
            scratch=self.tmp / f"scratch-{self.runs}",
            env={**self.env, "VOLUME": volume},
        )
        return done, logged(self.log)


def _runcmd_steps(user_data: str) -> list[list[str]]:
    """Each runcmd item as the argv its stand-in logs (the shell's own `set` is none)."""
    steps = []
    for item in yaml.safe_load(user_data)["runcmd"]:
        argv = [str(a) for a in item] if isinstance(item, list) else shlex.split(item)
        if argv[0] != "set":
            steps.append([Path(argv[0]).name, *argv[1:]])
    return steps


def _positions(steps: list[list[str]], calls: list[list[str]]) -> list[int]:
    """Where each step is in the calls, in order; fails on the first one missing."""
    found, at = [], 0
    for step in steps:
        while at < len(calls) and calls[at] != step:
            at += 1
        assert at < len(calls), f"{step} did not run (after {found})"
        found.append(at)
        at += 1
    return found


GUARD = ["mountpoint", "-q", "/mnt/wiki-events"]


def test_first_boot_stops_at_the_volume_guard_and_runs_every_step_once_mounted(
    tmp_path: Path,
) -> None:
    """cloud-init's runcmd is one sh script (its own shellify), run by its scripts_user
    (its own runparts): without the volume nothing after the guard runs; attached, every
    step runs in order; run again (deploy.md's recovery), nothing is done twice."""
    user_data = render_user_data(FIRST_BOOT)
    script = runcmd_script(user_data)
    assert script.startswith("#!/bin/sh\nset -eux\n")  # the first line after the header
    server = FirstBoot(tmp_path, script)
    steps = _runcmd_steps(user_data)
    guard = next(i for i, s in enumerate(steps) if "mountpoint -q /mnt/wiki-events" in s[-1])

    # the volume never appears: the wait gives up after 150 tries, the guard stops it all
    failed, calls = server.boot("absent")
    assert failed.returncode != 0
    assert "wiki-events: data volume not mounted" in failed.stderr
    assert "scripts_user: Runparts: 1 failures (runcmd)" in failed.stderr
    assert [c for c in calls if c[0] == "sleep"] == [["sleep", "2"]] * 150
    _positions(steps[: guard + 1], calls)
    assert calls[-1] == GUARD  # nothing after it: no clone, no layout, no .env, no stack
    assert not {"systemctl", "git", "prepare-volume", "python3", "ln", "cp"} & {c[0] for c in calls}
    assert list(server.opt.iterdir()) == []  # nothing cloned onto the root disk

    # the volume attached (the operator's fix), the same script run again: every step
    server.attach_volume()
    done, calls = server.boot("mounted")
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c[0] == "sleep"] == []
    at = _positions(steps, calls)
    assert calls[at[guard] + 1] == GUARD  # the guard's `sh -c`, then its check
    assert ["git", "clone", "--branch", "main", FIRST_BOOT["repo_url"], "/opt/wiki-events"] in (
        calls
    )
    assert calls[-1] == ["systemctl", "enable", "--now", "wiki-events.service"]
    volume_line = f"{DEVICE} /mnt/wiki-events ext4 discard,nofail,defaults 0 2"
    assert server.fstab.read_text().splitlines().count(volume_line) == 1

    # and again: the clone is kept, the fstab line not doubled, the rest runs as before
    again, calls = server.boot("mounted")
    assert again.returncode == 0, again.stderr
    assert "git" not in {c[0] for c in calls}
    _positions([s for s in steps if "git clone" not in s[-1]], calls)
    assert server.fstab.read_text().splitlines().count(volume_line) == 1


def test_first_boot_without_set_e_is_the_defect_the_guard_alone_does_not_stop(
    tmp_path: Path,
) -> None:
    """The same runcmd without its `set -eux` (the template before issue 21): the guard's
    exit 1 ends only its own `sh -c`, and the clone, the layout, the .env and the stack
    start run on the root disk. This is what the test above would see if the line went."""
    user_data = render_user_data(FIRST_BOOT)
    config = yaml.safe_load(user_data)
    assert config["runcmd"][0] == "set -eux"
    config["runcmd"] = config["runcmd"][1:]
    server = FirstBoot(tmp_path, runcmd_script(yaml.safe_dump(config)))
    done, calls = server.boot("absent")
    assert "wiki-events: data volume not mounted" in done.stderr
    names = [c[0] for c in calls]
    assert names.index("mountpoint") < names.index("git") < names.index("prepare-volume")
    assert calls[-1] == ["systemctl", "enable", "--now", "wiki-events.service"]


# -- Caddy ---------------------------------------------------------------------------------


def test_caddyfile_adapts_and_validates() -> None:
    bcrypt = "$2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG"
    env = {
        **os.environ,
        "DOMAIN": "wiki.example.org",
        "ACME_EMAIL": "ops@example.org",
        "DASH_USER": "wiki",
        "DASH_PASSWORD_HASH": bcrypt,
    }
    caddyfile = str(ROOT / "deploy" / "Caddyfile")
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", caddyfile, "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert adapted.returncode == 0, adapted.stderr
    config = json.loads(adapted.stdout)
    text = json.dumps(config)
    assert "wiki.example.org" in text and '"dial": "dash:8050"' in text
    assert '"authentication"' in text and "http_basic" in text
    valid = subprocess.run(
        ["caddy", "validate", "--config", caddyfile, "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert valid.returncode == 0, valid.stderr


# -- ClickHouse users --------------------------------------------------------------------


def _users() -> dict[str, ET.Element]:
    root = ET.parse(USERS_XML).getroot()
    return {user.tag: user for user in root.find("users")}  # type: ignore[union-attr]


# the system logs clickhouse-server 26.3's own config.xml switches on (programs/server/
# config.xml), less three that bound themselves or stay empty here: crash_log (1,024 rows),
# asynchronous_insert_log (its own 3-day TTL), s3queue_log (no S3Queue table here)
SERVER_SYSTEM_LOGS = [
    "query_log",
    "trace_log",
    "query_thread_log",
    "query_views_log",
    "part_log",
    "text_log",
    "metric_log",
    "latency_log",
    "error_log",
    "query_metric_log",
    "asynchronous_metric_log",
    "opentelemetry_span_log",
    "processors_profile_log",
    "backup_log",
    "blob_storage_log",
]


def test_every_system_log_the_server_keeps_is_bounded_or_off() -> None:
    config = ET.parse(ROOT / "deploy" / "clickhouse" / "config.d" / "wiki-events.xml").getroot()
    for name in SERVER_SYSTEM_LOGS:
        log = config.find(name)
        assert log is not None, f"{name}: neither a TTL nor remove=1 in config.d"
        if log.get("remove") == "1":
            continue
        ttl = log.findtext("ttl") or ""
        assert re.fullmatch(r"event_date \+ INTERVAL \d+ DAY DELETE", ttl), (name, ttl)


def test_clickhouse_users_passwords_from_env_and_default_local_only() -> None:
    users = _users()
    assert set(users) == {"default", "loader", "dbt", "dashboard", "backup", "dumps"}
    networks = [ip.text for ip in users["default"].find("networks")]  # type: ignore[union-attr]
    assert set(networks) == {"::1", "127.0.0.1"}
    for name in ("loader", "dbt", "dashboard", "backup", "dumps"):
        password = users[name].find("password")
        assert password is not None and password.get("from_env", "").startswith("CLICKHOUSE_")
        assert not (password.text or "").strip()
        assert f"${{{password.get('from_env')}" in (ROOT / "compose.yaml").read_text()
    root = ET.parse(USERS_XML).getroot()
    assert root.find("profiles/dashboard/readonly").text == "1"  # type: ignore[union-attr]
    assert root.find("quotas/dashboard") is not None
    assert users["dashboard"].find("quota").text == "dashboard"  # type: ignore[union-attr]


def _grants(user: ET.Element) -> set[tuple[str, str]]:
    """(privilege, object) pairs of a user's GRANT queries."""
    pairs = set()
    for query in user.findall("grants/query"):
        match = re.fullmatch(r"GRANT (.+) ON (\S+)", (query.text or "").strip())
        assert match, query.text
        pairs |= {(p.strip(), match.group(2)) for p in match.group(1).split(",")}
    return pairs


def _dumps_tables_with_load_id() -> set[str]:
    """The dumps' silver and gold tables (not views) that carry load_id: the ones a failed
    load's clean-up deletes from (dumps/load.py finds them through system.columns)."""
    found = set()
    for folder, database in (("staging/dumps", "silver"), ("marts/readers", "gold")):
        for path in (ROOT / "wiki_dbt" / "models" / folder).glob("*.sql"):
            sql = path.read_text()
            if "load_id" in sql and "materialized='view'" not in sql:
                found.add(f"{database}.{path.stem}")
    return found


def test_clickhouse_dumps_user_has_what_the_dumps_loader_needs_and_no_more() -> None:
    users = _users()
    grants = _grants(users["dumps"])
    for privilege in (
        "CREATE TABLE",
        "CREATE VIEW",
        "DROP TABLE",
        "DROP VIEW",
        "INSERT",
        "SELECT",
        "ALTER DELETE",
        "CREATE DATABASE",
    ):
        assert (privilege, "bronze.*") in grants, privilege
    # system.columns and system.tables are every user's: nothing of system granted
    assert not any(obj.startswith("system.") for _, obj in grants)
    cleaned = _dumps_tables_with_load_id()
    assert "silver.pageviews" in cleaned and "gold.top_pages_day_loads" in cleaned
    assert {obj for p, obj in grants if p == "ALTER DELETE" and obj != "bronze.*"} == cleaned
    # the attention spikes (dumps/spikes.py): the two parameterized views, what they read
    # (with the caller's rights), the two tables they fill, the marker table read back
    spikes = {
        ("INSERT", "gold.page_attention_spikes_hour_loads"),
        ("INSERT", "gold.page_attention_hours_loads"),
        ("SELECT", "gold.page_attention_hours_loads"),
        ("SELECT", "gold.page_attention_spikes_compute"),
        ("SELECT", "gold.page_attention_hours_compute"),
        ("SELECT", "silver.pageviews"),
        # and gold's media views, run as the inserting user by a media counts load
        ("SELECT", "silver.mediacounts"),
    }
    assert spikes <= grants
    # nothing else on silver or gold: it cannot write or drop the edits' models
    others = {(p, obj) for p, obj in grants if obj.split(".")[0] in ("silver", "gold")}
    assert {p for p, _ in others - spikes} == {"ALTER DELETE"}
    # nothing global but CLUSTER, for its DDL ON CLUSTER (tests/test_grants.py)
    assert {p for p, obj in grants if obj == "*.*"} == {"CLUSTER"}
    assert users["dumps"].findtext("profile") == "ingest"
    # the readers' gold views filter through the ledger: the dashboard reads it, only it;
    # and silver's page views and media counts (read by key: the drill-down, the exact
    # top pages and media files, the lookup page), nothing else of silver
    dashboard = _grants(users["dashboard"])
    assert dashboard == {
        ("SELECT", "gold.*"),
        ("SELECT", "bronze.dumps_files"),
        ("SELECT", "bronze.dumps_visible"),
        ("SELECT", "silver.pageviews"),
        ("SELECT", "silver.projectviews"),
        ("SELECT", "silver.mediacounts"),
    }


@pytest.mark.slow
def test_clickhouse_loads_the_users_file_and_the_dashboard_user_cannot_write(
    tmp_path: Path,
) -> None:
    """users.d loads as it is in the embedded ClickHouse, whose engine (ClickHouse's own
    access control) holds each user to its grants and profile: the dashboard reads,
    never writes. (tests/test_local_clickhouse_access.py goes through every role.)"""
    users = _users()
    env = {f"CLICKHOUSE_{name.upper()}_PASSWORD": f"{name}-pw" for name in users}
    server = ClickHouseProcess(tmp_path / "data", users_d=USERS_XML.parent, env=env).start()
    try:

        def run(user: str, sql: str) -> httpx.Response:
            password = "" if user == "default" else f"{user}-pw"
            return httpx.post(server.url, content=sql, auth=(user, password), timeout=30)

        for name in users:  # each logs in with its password from the environment
            assert run(name, "SELECT currentRoles()").status_code == 200, name
        assert run("default", "CREATE DATABASE gold").status_code == 200
        assert (
            run("dbt", "CREATE TABLE gold.t (a UInt8) ENGINE = MergeTree ORDER BY a").status_code
            == 200
        )
        assert run("dbt", "INSERT INTO gold.t VALUES (1)").status_code == 200
        assert run("dashboard", "SELECT sum(a) FROM gold.t").text == "1\n"
        for write in (
            "INSERT INTO gold.t VALUES (2)",
            "DROP TABLE gold.t",
            "CREATE TABLE gold.u (a UInt8) ENGINE = Memory",
        ):
            refused = run("dashboard", write)
            assert refused.headers.get("X-ClickHouse-Exception-Code") == "497", refused.text
        assert run("dashboard", "SELECT count() FROM gold.t").text == "1\n"
    finally:
        server.stop()


# -- RabbitMQ definitions --------------------------------------------------------------


@pytest.mark.slow
def test_rabbitmq_definitions_import_into_the_broker_with_least_privilege(
    tmp_path: Path,
) -> None:
    vhost = f"wiki-deploy-{uuid.uuid4().hex[:8]}"
    suffix = uuid.uuid4().hex[:6]
    env = {
        "RABBITMQ_VHOST": vhost,
        "RABBITMQ_ADMIN_PASSWORD": "a-pw",
        "RABBITMQ_READER_PASSWORD": "r-pw",
        "RABBITMQ_LOADER_PASSWORD": "l-pw",
    }
    out = tmp_path / "definitions.json"
    done = subprocess.run(
        [os.sys.executable, "deploy/rabbitmq/render_definitions.py", str(out)],  # type: ignore[attr-defined]
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "guest" not in text and "r-pw" not in text  # hashes only
    definitions = json.loads(text)
    # unique user names, so the shared test broker keeps its own users untouched
    for item in (*definitions["users"], *definitions["permissions"]):
        key = "name" if "name" in item else "user"
        item[key] = f"{item[key]}-{suffix}"
    # rabbitmqctl runs as the rabbitmq user, who cannot read tmp_path: a readable copy
    handle, shared = tempfile.mkstemp(prefix="wiki-definitions-", suffix=".json")
    with os.fdopen(handle, "w") as f:
        json.dump(definitions, f)
    os.chmod(shared, 0o644)
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "import_definitions", shared],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        os.unlink(shared)
    try:
        reader_url = f"amqp://reader-{suffix}:r-pw@127.0.0.1:5672/{vhost}"
        loader_url = f"amqp://loader-{suffix}:l-pw@127.0.0.1:5672/{vhost}"
        publisher = Publisher(reader_url)
        publisher.connect()  # declares the same topology: the definitions match the code
        publisher.send([Message(EXCHANGE, "enwiki", b'{"meta":{}}\n', events=1)])
        publisher.close()
        conn = pika.BlockingConnection(pika.URLParameters(loader_url))
        method, _, body = conn.channel().basic_get(LOADER_QUEUE, auto_ack=True)
        conn.close()
        assert method is not None and body == b'{"meta":{}}\n'
        conn = pika.BlockingConnection(pika.URLParameters(reader_url))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            conn.channel().basic_get(LOADER_QUEUE, auto_ack=True)  # the reader cannot consume
        assert refused.value.reply_code == 403
        conn.close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(
                pika.URLParameters(f"amqp://reader-{suffix}:wrong@127.0.0.1:5672/{vhost}")
            )
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
        for user in ("admin", "reader", "loader"):
            subprocess.run(
                ["rabbitmqctl", "-q", "delete_user", f"{user}-{suffix}"], capture_output=True
            )


# -- the step past one machine: engines chosen in one macro --------------------------------


def _engine_clause(engine: str | None, cluster: str) -> str:
    """Render wiki_dbt's engine_clause() as dbt does: ``config.get`` and ``target.cluster``."""
    import jinja2

    source = (ROOT / "wiki_dbt" / "macros" / "engine_clause.sql").read_text()
    env = jinja2.Environment(extensions=["jinja2.ext.do"])

    class Config(dict):  # type: ignore[type-arg]
        def get(self, key: str, default: Any = None) -> Any:
            return super().get(key) or default

    module = env.from_string(source).make_module(
        {
            "config": Config(engine=engine) if engine else Config(),
            "target": type("T", (), {"cluster": cluster})(),
        }
    )
    return " ".join(str(module.engine_clause()).split())  # type: ignore[attr-defined]


def test_engines_become_replicated_on_a_cluster_and_only_there() -> None:
    assert _engine_clause("SummingMergeTree()", "") == "engine = SummingMergeTree()"
    assert _engine_clause("SummingMergeTree()", "wiki") == "engine = ReplicatedSummingMergeTree()"
    assert _engine_clause("MergeTree()", "wiki") == "engine = ReplicatedMergeTree()"
    assert _engine_clause(None, "wiki") == "engine = ReplicatedMergeTree()"  # dbt's default
    assert _engine_clause("ReplicatedMergeTree()", "wiki") == "engine = ReplicatedMergeTree()"
    assert _engine_clause("Memory()", "wiki") == "engine = Memory()"
    # the project's engines all come from configs that this macro rewrites
    project = yaml.safe_load((ROOT / "wiki_dbt" / "dbt_project.yml").read_text())
    assert project["models"]["wiki_dbt"]["marts"]["+engine"] == "SummingMergeTree()"
    profile = (ROOT / "wiki_dbt" / "profiles.yml").read_text()
    assert "cluster: \"{{ env_var('DBT_CLICKHOUSE_CLUSTER', '') }}\"" in profile


def test_compose_passes_the_cluster_to_dbt_and_to_every_bronze_migration(tmp_path: Path) -> None:
    """CLICKHOUSE_CLUSTER in .env, the name deploy/cluster's remote_servers gives the
    cluster, reaches dbt's profile and each service that migrates bronze (the bronze
    service, the loader at its start, the dumps followers); unset, none of them gets one."""
    remote = ET.parse(ROOT / "deploy" / "cluster" / "config.d" / "cluster.xml").getroot()
    (cluster,) = [c.tag for c in remote.find("remote_servers")]  # type: ignore[union-attr]
    migrating = ("bronze", "loader", "dumps-pageviews", "dumps-mediacounts")
    for value in (cluster, ""):
        env = {**SAMPLE_ENV, "DATA_DIR": str(tmp_path), "COMPOSE_PROFILES": "dumps"}
        done = compose_config({**env, "CLICKHOUSE_CLUSTER": value})
        assert done.returncode == 0, done.stderr
        services = json.loads(done.stdout)["services"]
        assert services["dbt"]["environment"]["DBT_CLICKHOUSE_CLUSTER"] == value
        for name in migrating:
            assert services[name]["environment"]["CLICKHOUSE_CLUSTER"] == value, name
    # .env has the setting, empty by default: one server
    assert ENVFILE.FIELDS[ENVFILE.SETTINGS.index("CLICKHOUSE_CLUSTER")][1] == ""


# deploy/bin/backup and deploy/bin/stack's backup and restore: tests/test_backup.py, run for
# real against the embedded ClickHouse and an S3 stand-in (the S3 secret on no command line
# included)

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

from .conftest import ROOT, ClickHouseProcess


def _envfile() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("envfile", ROOT / "deploy" / "envfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENVFILE = _envfile()

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
TERRAFORM = ROOT / "terraform"
USERS_XML = ROOT / "deploy" / "clickhouse" / "users.d" / "wiki-events.xml"
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
        # no liveness check and no autoheal label: a follower that fails exits and Docker
        # restarts it; the watchdog (label wiki-events.autoheal) never touches it
        assert "healthcheck" not in service, name
        assert "wiki-events.autoheal" not in (service.get("labels") or {}), name
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
    assert sorted(published["caddy"]) == ["${HTTPS_PORT:-443}:443", "${HTTP_PORT:-80}:80"]
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
        "RABBITMQ_UI_PORT",
        "COMPOSE_PROJECT_NAME",
    }
    assert used <= listed, sorted(used - listed)
    for line in example.splitlines():  # secrets are left empty in the example
        key, _, value = line.partition("=")
        if re.search(r"PASSWORD|SECRET|HASH", key) and not line.startswith("#"):
            assert value == "''", key


def test_envfile_init_makes_secrets_once_and_rotate_rotates(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"DOMAIN": "wiki.example.org", "DATA_DIR": "/mnt/x"}))
    env_file = tmp_path / ".env"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [os.sys.executable, "deploy/envfile.py", *args],
            cwd=ROOT,  # type: ignore[attr-defined]
            input="",  # never the terminal: a value asked for finds an empty stdin
            capture_output=True,
            text=True,
            timeout=120,
        )

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


# -- terraform -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """python-hcl2's output without its quoting of names and strings and block markers."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _terraform() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with open(path) as f:
            for key, value in _plain(hcl2.load(f)).items():
                merged.setdefault(key, []).extend(value)
    return merged


def test_terraform_variables_are_typed_described_and_the_token_sensitive() -> None:
    tf = _terraform()
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
    assert variables["hcloud_token"]["sensitive"] is True
    assert variables["server_type"]["default"] == "cx23"  # the current CX line (cx22/32 are gone)
    providers = tf["terraform"][0]["required_providers"][0]
    assert re.fullmatch(r"~> \d+\.\d+\.\d+", providers["hcloud"]["version"])
    major, minor = map(int, providers["hcloud"]["version"][3:].split(".")[:2])
    assert (major, minor) >= (1, 62)  # location on primary IPs; datacenters are phased out
    assert "random" not in providers  # no secret is made by terraform any more
    assert providers["hcloud"]["source"] == "hetznercloud/hcloud"
    outputs = {name: body for block in tf["output"] for name, body in block.items()}
    assert {"ipv4_address", "ipv6_address", "dashboard_url"} <= set(outputs)
    assert all(o.get("description") for o in outputs.values())


def test_terraform_fails_at_plan_time_on_a_wrong_type_or_location_and_keeps_no_secret() -> None:
    tf = _terraform()
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
    # the first resources created carry the deprecated-type precondition
    conditions = str(resources[("hcloud_ssh_key", "admin")]["lifecycle"])
    assert "local.server_type_here != null" in conditions and "is_deprecated" in conditions
    main = (TERRAFORM / "main.tf").read_text()
    assert "data.hcloud_server_type.selected.locations" in main
    # addresses that outlive the server; user_data changes are no longer ignored
    addresses = resources[("hcloud_primary_ip", "address")]
    assert addresses["for_each"] == '${toset(["ipv4", "ipv6"])}'
    assert addresses["auto_delete"] is False
    assert 'hcloud_primary_ip.address["ipv4"].id' in str(server["public_net"])
    assert "user_data" not in str(server["lifecycle"])
    # every setting terraform sends is one envfile.py init accepts (it refuses others)
    settings = next(block["settings"] for block in tf["locals"] if "settings" in block)
    assert set(settings) <= set(ENVFILE.SETTINGS) and {"DOMAIN", "DATA_DIR"} <= set(settings)
    text = "\n".join(p.read_text() for p in TERRAFORM.glob("*.tf"))
    assert "random_password" not in text and "bcrypt(" not in text
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    assert re.search(r"^\s*hcloud_token\s*=", example, re.M) is None  # TF_VAR_ wins
    assert re.search(r'^server_type\s*=\s*"cx23"', example, re.M)


def test_terraform_firewall_opens_web_to_all_and_ssh_to_admins_only() -> None:
    tf = _terraform()
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


SAMPLE = {
    # base64 of {"DOMAIN": "wiki.example.org"}: terraform's jsonencode of the settings
    "settings_b64": "eyJET01BSU4iOiAid2lraS5leGFtcGxlLm9yZyJ9",
    "volume_device": "/dev/disk/by-id/scsi-0HC_Volume_1234567",
    "repo_url": "https://git.example.org/you/wiki-events.git",
    "git_ref": "main",
}


def render_cloud_init(values: dict[str, str]) -> str:
    """templatefile() for this template: only ${name} interpolations, checked complete."""
    template = (TERRAFORM / "cloud-init.yaml.tftpl").read_text()
    names = set(re.findall(r"\$\{(\w+)\}", template))
    assert names == set(values), names ^ set(values)
    assert "%{" not in template
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)


def test_cloud_init_renders_and_passes_cloud_inits_schema(tmp_path: Path) -> None:
    main = (TERRAFORM / "main.tf").read_text()
    call = main[main.index("templatefile(") : main.index("})", main.index("templatefile("))]
    assert set(re.findall(r"^\s+(\w+)\s+=", call, re.M)) == set(SAMPLE)
    rendered = tmp_path / "user-data.yaml"
    rendered.write_text(render_cloud_init(SAMPLE))
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
    assert re.search(r"PASSWORD|SECRET|random_password|bcrypt", text) is None  # no secret
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("package_update: true", "package_update: 7"))
    refused = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0  # the validator does check


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
    assert ("SELECT", "system.*") in grants
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
    }
    assert spikes <= grants
    # nothing else on silver or gold: it cannot write or drop the edits' models
    others = {(p, obj) for p, obj in grants if obj.split(".")[0] in ("silver", "gold")}
    assert {p for p, _ in others - spikes} == {"ALTER DELETE"}
    assert not any(obj == "*.*" for _, obj in grants)
    assert users["dumps"].findtext("profile") == "ingest"
    # the readers' gold views filter through the ledger: the dashboard reads it, only it;
    # and silver's page views (the drill-down reads them by key), nothing else of silver
    dashboard = _grants(users["dashboard"])
    assert dashboard == {
        ("SELECT", "gold.*"),
        ("SELECT", "bronze.dumps_files"),
        ("SELECT", "bronze.dumps_visible"),
        ("SELECT", "silver.pageviews"),
        ("SELECT", "silver.projectviews"),
    }


def test_clickhouse_grants_parse_and_the_dashboard_user_cannot_write(tmp_path: Path) -> None:
    """chDB has no access storage (no CREATE USER, no GRANT); what it can check, it does:
    every grant parses in the engine, and the users, mapped to the embedded server's
    users file with the profiles' readonly, behave: the dashboard reads, never writes."""
    users = _users()
    root = ET.parse(USERS_XML).getroot()
    toml = []
    for name, user in users.items():
        profile = (user.findtext("profile") or "").strip()
        readonly = root.findtext(f"profiles/{profile}/readonly") if profile else None
        toml.append(
            f'[users.{name}]\npassword = "{name}-pw"\n'
            + (f"readonly = {readonly}\n" if readonly else "")
        )
    users_file = tmp_path / "users.toml"
    users_file.write_text("\n".join(toml))
    server = ClickHouseProcess(tmp_path / "data", users=users_file).start()
    try:

        def run(user: str, sql: str) -> httpx.Response:
            return httpx.post(server.url, content=sql, auth=(user, f"{user}-pw"), timeout=30)

        for name, user in users.items():
            for grant in user.findall("grants/query"):
                parsed = run("default", f"EXPLAIN AST {grant.text} TO {name}")
                assert parsed.status_code == 200 and "GrantQuery" in parsed.text, parsed.text
        assert run("loader", "CREATE DATABASE gold").status_code == 200
        assert (
            run("loader", "CREATE TABLE gold.t (a UInt8) ENGINE = MergeTree ORDER BY a").status_code
            == 200
        )
        assert run("loader", "INSERT INTO gold.t VALUES (1)").status_code == 200
        assert run("dashboard", "SELECT sum(a) FROM gold.t").text == "1\n"
        for write in (
            "INSERT INTO gold.t VALUES (2)",
            "DROP TABLE gold.t",
            "CREATE TABLE gold.u (a UInt8) ENGINE = Memory",
        ):
            refused = run("dashboard", write)
            assert refused.headers.get("X-ClickHouse-Exception-Code") == "164", write
        assert run("dashboard", "SELECT count() FROM gold.t").text == "1\n"
    finally:
        server.stop()


# -- RabbitMQ definitions --------------------------------------------------------------


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


# -- deploy/bin/stack and deploy/bin/backup: the S3 secret on no command line ------------

S3_SECRET = "s3-SECRET-never-in-argv-0123456789"

# a stand-in docker: logs its argv, runs `compose exec -T backup /app/deploy/bin/...` with
# this checkout's script, keeps what clickhouse-client gets on stdin, answers the rest
FAKE_DOCKER = """#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
if args[:4] == ["compose", "exec", "-T", "backup"]:
    script = args[4].replace("/app/", os.environ["CHECKOUT"] + "/", 1)
    sys.exit(subprocess.run(["/bin/sh", script, *args[5:]]).returncode)
if args[:4] == ["compose", "exec", "-T", "clickhouse"] and args[4] == "clickhouse-client":
    stdin = "" if args[5:] else sys.stdin.read().strip()
    with open(os.environ["QUERY_LOG"], "a") as log:
        log.write(json.dumps(args[5:]) + " " + stdin + "\\n")
"""

# a stand-in wiki-events for deploy/bin/backup: logs its argv, keeps the query on stdin
FAKE_WIKI_EVENTS = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
if sys.argv[1:] == ["sql", "-"]:
    with open(os.environ["QUERY_LOG"], "a") as log:
        log.write(sys.stdin.read() + "\\n")
    print("backup-id\\tBACKUP_CREATED")
"""

# every other program the scripts may run: logged, then the real one
LOGGED = (
    '#!/bin/sh\nprintf \'%s\\n\' "$(printf \'%s\\t\' "$0" "$@")" >> "$ARGV_LOG"\nexec {real} "$@"\n'
)


def shims(tmp_path: Path) -> dict[str, str]:
    """A PATH of stand-ins and logging wrappers only: a program the scripts run that is not
    here fails them (so none escapes the log); every argv goes to ARGV_LOG."""
    import shutil
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "docker": FAKE_DOCKER.format(python=sys.executable),
        "wiki-events": FAKE_WIKI_EVENTS.format(python=sys.executable),
    }
    for name in ("dirname", "sed", "tail", "tr", "date", "mv", "cat"):
        scripts[name] = LOGGED.format(real=shutil.which(name))
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": str(bin_dir),
        "ARGV_LOG": str(tmp_path / "argv.log"),
        "QUERY_LOG": str(tmp_path / "query.log"),
        "CHECKOUT": str(ROOT),
        "BACKUP_S3_URL": "https://fsn1.your-objectstorage.com/bucket/wiki-events",
        "BACKUP_S3_ACCESS_KEY_ID": "KEYID",
        "BACKUP_S3_SECRET_ACCESS_KEY": S3_SECRET,
    }


def test_stack_restore_and_backup_keep_the_s3_secret_off_every_command_line(
    tmp_path: Path,
) -> None:
    env = shims(tmp_path)
    restore = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "bin" / "stack"), "restore", "20261201T030000Z"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert restore.returncode == 0, restore.stderr
    argvs = (tmp_path / "argv.log").read_text()
    assert "clickhouse-client" in argvs and "DROP DATABASE IF EXISTS bronze SYNC" in argvs
    assert 'backup", "source", "20261201T030000Z' in argvs
    assert S3_SECRET not in argvs and "KEYID" not in argvs
    # the RESTORE, with the credentials, reached clickhouse-client on its stdin
    restored = (tmp_path / "query.log").read_text().splitlines()
    assert restored[-1] == (
        "[] RESTORE DATABASE bronze, DATABASE silver, DATABASE gold FROM "
        "S3('https://fsn1.your-objectstorage.com/bucket/wiki-events/20261201T030000Z', "
        f"'KEYID', '{S3_SECRET}')"
    )
    # the daily backup: the query on wiki-events sql's stdin, the status file written
    (tmp_path / "argv.log").unlink()
    status = tmp_path / "status"
    status.mkdir()
    backup = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "bin" / "backup"), "once"],
        env={**env, "BACKUP_STATUS_DIR": str(status)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert backup.returncode == 0, backup.stderr
    argvs = (tmp_path / "argv.log").read_text()
    assert '"sql", "-"' in argvs and S3_SECRET not in argvs
    query = (tmp_path / "query.log").read_text()
    assert re.search(
        rf"BACKUP DATABASE bronze, DATABASE silver, DATABASE gold TO S3\(.*'{S3_SECRET}'\)", query
    )
    assert (status / "last-ok").read_text().split()[1:] == ["backup-id", "BACKUP_CREATED"]
    # nothing to restore from: refused before anything is stopped or dropped
    (tmp_path / "argv.log").unlink()
    empty = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "bin" / "stack"), "restore", "x"],
        env={**env, "BACKUP_S3_URL": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 1 and "no BACKUP_S3_URL" in empty.stderr
    assert "DROP" not in (tmp_path / "argv.log").read_text()

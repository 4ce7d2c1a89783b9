"""Which server settings chDB (ClickHouse as a library, the embedded server's engine)
honours, each shown on the engine alone, in a process of its own: what it honours the
embedded server leaves to it (local_clickhouse/engine.py, access.py), what it ignores
the server does itself (guard.py, limits.py). If a chDB upgrade starts honouring one,
its test fails and says which part of the server can go."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def engine(tmp_path: Path, config: str, script: str, users: str = "") -> dict[str, object]:
    """Run ``script`` (which sets ``out``) against a fresh engine loading ``config``."""
    users_xml = tmp_path / "users.xml"
    users_xml.write_text(
        users
        or "<clickhouse><profiles><default/></profiles><users><default><password/>"
        "<networks><ip>::/0</ip></networks><profile>default</profile></default></users>"
        "</clickhouse>"
    )
    (tmp_path / "config.xml").write_text(
        f"<clickhouse><users_config>{users_xml}</users_config>{config}</clickhouse>"
    )
    code = (
        textwrap.dedent(
            f"""
        import json, chdb
        conn = chdb.connect("{tmp_path}/data?config-file={tmp_path}/config.xml")
        def q(sql):
            try:
                return bytes(conn.query(sql, "TSVRaw").bytes()).decode().strip()
            except Exception as exc:
                return "ERROR " + str(exc).splitlines()[0]
        out = {{}}
        """
        )
        + textwrap.dedent(script)
        + "\nprint(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_max_server_memory_usage_is_honoured(tmp_path: Path) -> None:
    out = engine(
        tmp_path,
        "<max_server_memory_usage>300000000</max_server_memory_usage>",
        """
        out["big"] = q("SELECT count() FROM (SELECT groupArray(number) FROM numbers(100000000))")
        """,
    )
    assert "MEMORY_LIMIT_EXCEEDED" in str(out["big"]) or "memory limit" in str(out["big"])


def test_a_profiles_max_memory_usage_and_constraints_are_honoured(tmp_path: Path) -> None:
    users = """<clickhouse><profiles><default>
      <max_memory_usage>100000000</max_memory_usage>
      <constraints><max_memory_usage><max>100000000</max></max_memory_usage></constraints>
    </default></profiles><users><default><password/><networks><ip>::/0</ip></networks>
    <profile>default</profile></default></users></clickhouse>"""
    out = engine(
        tmp_path,
        "",
        """
        out["big"] = q("SELECT count() FROM (SELECT groupArray(number) FROM numbers(100000000))")
        out["raise"] = q("SET max_memory_usage = 1000000000")
        """,
        users,
    )
    assert "MEMORY_LIMIT_EXCEEDED" in str(out["big"]), out
    assert "SETTING_CONSTRAINT_VIOLATION" in str(out["raise"]), out


def test_remote_url_allow_hosts_is_ignored(tmp_path: Path) -> None:
    # the guard refuses url() & co. itself (guard.py: NETWORK_FUNCTIONS)
    out = engine(
        tmp_path,
        "<remote_url_allow_hosts><host>example.invalid</host></remote_url_allow_hosts>",
        """
        import http.server, threading
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"fetched from a host not allowed\\n")
            def log_message(self, *args):
                pass
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        url = f"http://127.0.0.1:{port}/x"
        out["url"] = q(f"SELECT * FROM url('{url}', 'LineAsString', 's String')")
        """,
    )
    assert out["url"] == "fetched from a host not allowed", out


def test_user_files_path_is_ignored(tmp_path: Path) -> None:
    # the guard confines paths itself (guard.py: PATH_FUNCTIONS, table paths)
    outside = tmp_path / "outside.txt"
    outside.write_text("read outside user_files\n")
    out = engine(
        tmp_path,
        f"<user_files_path>{tmp_path}/user_files/</user_files_path>",
        f"""
        out["file"] = q("SELECT * FROM file('{outside}', 'LineAsString')")
        out["scalar"] = q("SELECT file('{outside}')")
        """,
    )
    assert out["file"] == "read outside user_files", out
    assert "read outside user_files" in str(out["scalar"]), out


def test_select_from_system_db_requires_grant_is_ignored(tmp_path: Path) -> None:
    # the server checks reads of system tables itself (server.py: _check_system_reads)
    users = """<clickhouse><profiles><default/></profiles>
    <roles><nothing><grants><query>GRANT SELECT ON gold.*</query></grants></nothing></roles>
    <users><default><password/><networks><ip>::/0</ip></networks><profile>default</profile>
    <grants><query>GRANT nothing</query></grants></default></users></clickhouse>"""
    out = engine(
        tmp_path,
        "<access_control_improvements><select_from_system_db_requires_grant>true"
        "</select_from_system_db_requires_grant></access_control_improvements>",
        """
        out["processes"] = q("SELECT count() > 0 FROM system.processes")
        """,
        users,
    )
    assert out["processes"] == "1", out


def test_set_role_narrows_the_engine_users_rights(tmp_path: Path) -> None:
    # what access.py builds on: the engine's one user, given every user's role, acts
    # with one role's grants after SET ROLE, checked by ClickHouse before anything runs
    users = """<clickhouse><profiles><default/></profiles>
    <roles>
      <reader><grants><query>GRANT SELECT ON db.*</query></grants></reader>
      <everything><grants><query>GRANT ALL ON *.*</query></grants></everything>
    </roles>
    <users><default><password/><networks><ip>::/0</ip></networks><profile>default</profile>
    <grants><query>GRANT reader, everything</query></grants></default></users></clickhouse>"""
    out = engine(
        tmp_path,
        "",
        """
        q("CREATE DATABASE db")
        q("CREATE TABLE db.t (a UInt8) ENGINE = MergeTree ORDER BY a")
        q("SET ROLE reader")
        out["insert"] = q("INSERT INTO db.t VALUES (1)")
        out["select"] = q("SELECT count() FROM db.t")
        out["impersonate"] = q("EXECUTE AS default SELECT 1")
        """,
        users,
    )
    assert "ACCESS_DENIED" in str(out["insert"]) and "INSERT" in str(out["insert"]), out
    assert out["select"] == "0", out
    assert "IMPERSONATE" in str(out["impersonate"]) or "ERROR" in str(out["impersonate"]), out

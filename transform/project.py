"""Running the dbt project (``wiki_dbt/``) against the pipeline's ClickHouse.

Analysts run ``cd wiki_dbt && dbt build`` with ``DBT_CLICKHOUSE_*`` in the environment
(``wiki_dbt/profiles.yml`` defaults them to the embedded server). ``wiki-events`` runs
the same dbt with those variables derived from ``CLICKHOUSE_URL`` unless they are set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from wiki_core.config import ClickHouseURL

# the checkout's wiki_dbt/, or WIKI_DBT_PROJECT where the package is installed elsewhere
PROJECT = Path(
    os.environ.get("WIKI_DBT_PROJECT") or Path(__file__).resolve().parent.parent / "wiki_dbt"
)


def dbt_env(
    clickhouse_url: str, base: Mapping[str, str] | None = None, cluster: str = ""
) -> dict[str, str]:
    """The environment for dbt: ``DBT_CLICKHOUSE_*`` from the URL (and the cluster, from
    ``CLICKHOUSE_CLUSTER``) where not already set."""
    env = dict(os.environ if base is None else base)
    target = ClickHouseURL.parse(clickhouse_url)
    derived = {
        "DBT_CLICKHOUSE_HOST": target.host,
        "DBT_CLICKHOUSE_PORT": str(target.port),
        "DBT_CLICKHOUSE_USER": target.user,
        "DBT_CLICKHOUSE_PASSWORD": target.password,
        "DBT_CLICKHOUSE_SECURE": str(target.secure),
        "DBT_CLICKHOUSE_CLUSTER": cluster,
    }
    for key, value in derived.items():
        env.setdefault(key, value)
    env.setdefault("DBT_PROFILES_DIR", str(PROJECT))
    return env


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def run_dbt(
    args: list[str],
    clickhouse_url: str,
    *,
    work_dir: Path | None = None,
    capture: bool = True,
    timeout: float | None = None,
    cluster: str = "",
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``dbt ARGS`` on the project; ``work_dir`` holds target/ and logs/ when given;
    ``env`` on top of this process's environment (what it sets wins over the URL)."""
    env = dbt_env(clickhouse_url, {**os.environ, **(env or {})}, cluster=cluster)
    if work_dir is not None:
        env["DBT_TARGET_PATH"] = str(work_dir / "target")
        env["DBT_LOG_PATH"] = str(work_dir / "logs")
    return subprocess.run(
        [dbt_executable(), *args, "--project-dir", str(PROJECT)],
        cwd=PROJECT,
        env=env,
        capture_output=capture,
        text=True,
        timeout=timeout,
    )


def build_summary(stdout: str) -> tuple[str, list[str]]:
    """dbt's console output, shortened: the ``Done. PASS=...`` line, and the last lines
    that name an error or a failure."""
    lines = stdout.splitlines()
    done = [ln for ln in lines if "Done. PASS=" in ln]
    summary = done[-1].split("  ", 1)[-1].strip() if done else "no summary"
    problems = [ln.strip() for ln in lines if "rror" in ln or "FAIL" in ln][-5:]
    return summary, problems

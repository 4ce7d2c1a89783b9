"""Least privilege, proven by mutation: every grant of production's ClickHouse users is
needed by a duty that a test performs.

For each GRANT line of ``deploy/clickhouse/users.d/wiki-events.xml`` (a user's or the
analyst role's), and for each privilege of a GRANT that names several, a copy of users.d
is written with that line, or that one privilege, taken away. The tests of the users'
duties (``tests/test_grants.py``: each user's real code against the embedded ClickHouse,
which enforces the grants with ClickHouse's own access control) then run against the
copy (``WIKI_EVENTS_USERS_D``), only those of the user that lost the grant, stopping at
the first failure. A mutation is killed when a test fails; the table names that test and
the statement ClickHouse refused (code 497, ACCESS_DENIED). A mutation that no test kills
is a privilege no duty needs, or a duty without a test: either way, a finding.

Run: .venv/bin/python bench/grant_mutations.py [--only TEXT]
Writes bench/results/grant_mutations.json and the section of bench/RESULTS.md between
its markers; prints the table. One pytest at a time (the embedded server, dbt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERS_D = ROOT / "deploy" / "clickhouse" / "users.d"
USERS_FILE = USERS_D / "wiki-events.xml"
RESULTS = ROOT / "bench" / "results" / "grant_mutations.json"
REPORT = ROOT / "bench" / "RESULTS.md"
BEGIN = "<!-- grant_mutations.py: begin -->"
END = "<!-- grant_mutations.py: end -->"

TESTS = "tests/test_grants.py"
# the duties each user (or the analyst role) performs in tests/test_grants.py, in its order
DUTIES = {
    "loader": [
        "test_the_loader_migrates_bronze_and_changes_its_retention",
        "test_the_loader_inserts_events_through_silver_and_gold",
    ],
    "dbt": ["test_dbt_builds_silver_and_gold_then_rebuilds_them_as_an_upgrade_does"],
    "dumps": ["test_the_dumps_followers_load_clean_up_and_compute_spikes"],
    "dashboard": ["test_the_dashboard_reads_every_page"],
    "backup": ["test_the_backup_service_backs_up_bronze_silver_and_gold"],
    "analyst": ["test_an_analyst_reads_every_layer_and_sends_external_data"],
}
# no cluster runs here: the CLUSTER grant is checked against the users that render ON CLUSTER
CLUSTER_TEST = "test_the_users_that_run_ddl_on_a_cluster_hold_cluster"

_GRANT = re.compile(r"^(\s*<query>)GRANT (.+?) ON (\S+)(</query>\s*)$")
_OWNER = re.compile(r"^\s*<(\w+)>\s*$")
_REFUSED = re.compile(r"(\w+: Not enough privileges\. [^\n]*?)(?: \(ACCESS_DENIED\)|\\n|$)", re.M)


@dataclass
class Mutation:
    owner: str  # the user, or "analyst" (the role)
    line: int  # 1-based, in wiki-events.xml
    grant: str  # the GRANT as written
    removed: str  # what this mutation takes away: the whole line, or one privilege
    text: str = ""  # the mutated file
    killed_by: str = ""  # the first failing test
    refused: str = ""  # ClickHouse's ACCESS_DENIED message, or the failure's first line
    seconds: float = 0.0


def mutations(source: str) -> list[Mutation]:
    lines = source.splitlines(keepends=True)
    found: list[Mutation] = []
    owner = ""
    for number, line in enumerate(lines, 1):
        opened = _OWNER.match(line)
        if opened and opened.group(1) not in ("grants", "users", "roles", "networks"):
            owner = opened.group(1)
        match = _GRANT.match(line.rstrip("\n"))
        if not match:
            continue
        head, privileges, target, tail = match.groups()
        grant = f"GRANT {privileges} ON {target}"

        def mutated(new_line: str, at: int = number) -> str:
            return "".join(lines[: at - 1]) + new_line + "".join(lines[at:])

        found.append(Mutation(owner, number, grant, grant, mutated("")))
        names = [p.strip() for p in privileges.split(",")]
        if len(names) > 1:
            for name in names:
                rest = ", ".join(n for n in names if n != name)
                new = f"{head}GRANT {rest} ON {target}{tail}\n"
                found.append(Mutation(owner, number, grant, f"{name} ON {target}", mutated(new)))
    return found


def selected(mutation: Mutation) -> list[str]:
    if mutation.removed == "GRANT CLUSTER ON *.*":
        return [f"{TESTS}::{CLUSTER_TEST}"]
    return [f"{TESTS}::{name}" for name in DUTIES[mutation.owner]]


def first_failure(junit: Path) -> tuple[str, str]:
    """(test, what it said) of the first failed or erroring test in a JUnit XML report."""
    if not junit.exists():
        return "", ""
    for case in ET.parse(junit).getroot().iter("testcase"):
        for kind in ("failure", "error"):
            found = case.find(kind)
            if found is not None:
                text = (found.get("message") or "") + "\n" + (found.text or "")
                refused = _REFUSED.search(text)
                if refused:
                    said = refused.group(1)
                else:
                    said = next((ln for ln in text.splitlines() if ln.strip()), "")
                    said = said.strip()[:300]
                where = " (setup)" if kind == "error" else ""
                return case.get("name", "") + where, said
    return "", ""


def run(mutation: Mutation, python: str) -> None:
    with tempfile.TemporaryDirectory(prefix="grant-mutation-") as tmp:
        folder = Path(tmp) / "users.d"
        shutil.copytree(USERS_D, folder)
        (folder / USERS_FILE.name).write_text(mutation.text)
        junit = Path(tmp) / "junit.xml"
        env = {**os.environ, "WIKI_EVENTS_USERS_D": str(folder), "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        subprocess.run(
            [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}", *selected(mutation)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )  # fmt: skip
        mutation.seconds = round(time.monotonic() - started, 1)
        mutation.killed_by, mutation.refused = first_failure(junit)


def table(found: list[Mutation]) -> str:
    rows = [
        "| user | grant removed | first failing test | refused statement |",
        "| --- | --- | --- | --- |",
    ]
    for m in found:
        removed = m.removed if m.removed == m.grant else f"{m.removed} (of `{m.grant}`)"
        test = f"`{m.killed_by}`" if m.killed_by else "**none: survived**"
        said = m.refused.replace("|", "\\|")
        rows.append(f"| {m.owner} | `{removed}` | {test} | {said} |")
    return "\n".join(rows)


def report(found: list[Mutation], seconds: float, again: tuple[int, float] | None) -> str:
    survived = [m for m in found if not m.killed_by]
    rerun = (
        f" Then, after the changes those findings asked for, {again[0]} mutations run "
        f"again (`--again`: the survivors and the new ones): {again[1] / 60:.1f} min."
        if again
        else ""
    )
    return "\n".join(
        [
            BEGIN,
            f"## Least privilege by mutation (issue 21, `bench/grant_mutations.py`, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())})",
            "",
            f"{len(found)} mutations of `deploy/clickhouse/users.d/wiki-events.xml` (each GRANT "
            "line taken away, and each privilege of a GRANT that names several), each run "
            "against the tests of the duties of the user that lost it (`tests/test_grants.py`, "
            "the embedded ClickHouse enforcing the copy with ClickHouse's own access control, "
            f"`-x`). Killed: {len(found) - len(survived)}; survived: {len(survived)}. The whole "
            f"run: {seconds / 60:.1f} min on {platform.node() or 'this machine'} "
            f"({os.cpu_count()} cores), one pytest at a time.{rerun}",
            "",
            table(found),
            END,
        ]
    )


def write_report(text: str) -> None:
    old = REPORT.read_text()
    if BEGIN in old and END in old:
        before, rest = old.split(BEGIN, 1)
        new = before + text + rest.split(END, 1)[1]
    else:
        head, sep, rest = old.partition("\n## ")
        new = head.rstrip("\n") + "\n\n" + text + "\n\n" + "## " + rest if sep else old + text
    REPORT.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="only mutations whose removal names this")
    parser.add_argument(
        "--again",
        action="store_true",
        help="run only the mutations that survived the last run (its JSON) or are new since, "
        "keep the others' results, and write the report",
    )
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    found = mutations(USERS_FILE.read_text())
    last: dict[tuple[str, str], dict[str, object]] = {}
    full = 0.0
    if args.again:
        data = json.loads(RESULTS.read_text())
        full = float(data["seconds"])
        last = {(str(m["owner"]), str(m["removed"])): m for m in data["mutations"]}
    todo = []
    for m in found:
        old = last.get((m.owner, m.removed))
        if args.again and old and old["killed_by"] and not (args.only and args.only in m.removed):
            m.killed_by, m.refused = str(old["killed_by"]), str(old["refused"])
            m.seconds = float(str(old["seconds"]))
        elif args.only in f"{m.owner} {m.removed}":
            todo.append(m)
    started = time.monotonic()
    for n, mutation in enumerate(todo, 1):
        run(mutation, args.python)
        verdict = mutation.killed_by or "SURVIVED"
        print(
            f"[{n}/{len(todo)}] {mutation.owner}: -{mutation.removed}: {verdict} "
            f"({mutation.seconds} s) {mutation.refused[:160]}",
            flush=True,
        )
    seconds = time.monotonic() - started
    again = (len(todo), seconds) if args.again else None
    text = report(found if args.again else todo, full if args.again else seconds, again)
    print(text)
    if args.again or not args.only:
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": platform.node(),
                    "seconds": round(full if args.again else seconds, 1),
                    "again": [len(todo), round(seconds, 1)] if args.again else None,
                    "mutations": [
                        {k: v for k, v in asdict(m).items() if k != "text"}
                        for m in (found if args.again else todo)
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        write_report(text)


if __name__ == "__main__":
    main()

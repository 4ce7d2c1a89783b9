"""Memory and CPU per service of the compose stack, and disk bytes per event per layer.

    .venv/bin/python tests/stack/measure.py [--seconds 120]

Runs the stack test's stack (stand-in images, tests/stack/build_images.sh) with the
emulator looping over the largest recording (one stretch of time: a concatenation of the
recordings spans years, and its looped passes would be dated in the future and
quarantined, not loaded): first at the live rate (50 events/s), then as fast
as it goes (a backfill). Samples ``docker stats`` every few seconds in each phase and
prints markdown tables for deploy.md: CPU (% of one core) and memory per service, mean
and peak; events/s reached; compressed bytes per event in bronze, silver and gold
(``system.parts``). The ClickHouse row is chDB's (the stand-in), not clickhouse-server's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.test_stack import RECORDING, Stack, start_stack  # noqa: E402

UNITS = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "kB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def mebibytes(text: str) -> float:
    for unit in sorted(UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * UNITS[unit] / 1024**2
    return float(text) / 1024**2


def sample(stack: Stack, seconds: float) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """docker stats of the project's containers; returns samples and events/s into bronze."""
    got: dict[str, list[tuple[float, float]]] = defaultdict(list)
    prefix = stack.project + "-"
    start_count, start = stack.bronze(), time.monotonic()
    while time.monotonic() - start < seconds:
        done = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        for line in done.stdout.splitlines():
            row = json.loads(line)
            name = row["Name"]
            if not name.startswith(prefix):
                continue
            service = name[len(prefix) :].rsplit("-", 1)[0]
            cpu = float(row["CPUPerc"].rstrip("%"))
            memory = mebibytes(row["MemUsage"].split("/")[0].strip())
            got[service].append((cpu, memory))
    rate = (stack.bronze() - start_count) / (time.monotonic() - start)
    return got, rate


def table(title: str, got: dict[str, list[tuple[float, float]]], rate: float) -> str:
    lines = [
        f"**{title}** ({rate:.0f} events/s into bronze)",
        "",
        "| service | CPU mean % | CPU peak % | memory mean MiB | memory peak MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    total_mem = 0.0
    for service in sorted(got):
        cpus = [c for c, _ in got[service]]
        mems = [m for _, m in got[service]]
        total_mem += max(mems)
        lines.append(
            f"| {service} | {statistics.mean(cpus):.1f} | {max(cpus):.1f} | "
            f"{statistics.mean(mems):.0f} | {max(mems):.0f} |"
        )
    lines.append(f"| **sum of peaks** | | | | {total_mem:.0f} |")
    return "\n".join(lines)


def disk(stack: Stack) -> str:
    events = stack.scalar("SELECT count() FROM bronze.wiki_raw")
    rows = stack.rows(
        "SELECT database, name, total_bytes, total_rows FROM system.tables "
        "WHERE database IN ('bronze', 'silver', 'gold') AND total_bytes > 0 "
        "ORDER BY database, name"
    )
    lines = [
        f"**Disk** ({events} events in bronze.wiki_raw; system.tables, compressed)",
        "",
        "| table | bytes | bytes per event | rows |",
        "| --- | ---: | ---: | ---: |",
    ]
    per_layer: dict[str, int] = defaultdict(int)
    for database, name, size, count in rows:
        per_layer[database] += int(size)
        lines.append(f"| {database}.{name} | {int(size)} | {int(size) / events:.1f} | {count} |")
    for layer, total in sorted(per_layer.items()):
        lines.append(f"| **{layer}** | {total} | {total / events:.0f} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    recordings = max(RECORDING.glob("*.ndjson"), key=lambda p: p.stat().st_size).read_bytes()
    os.environ["MEASURE_RATE"] = "50"
    stack = start_stack(
        Path(tempfile.mkdtemp(prefix="wiki-measure-")),
        recordings,
        ("tests/stack/compose.measure.yaml",),
    )
    try:
        time.sleep(20)  # past the start-up
        live, live_rate = sample(stack, args.seconds)
        os.environ["MEASURE_RATE"] = "0"
        stack.compose("up", "-d", "--wait", "emulator")  # recreated: as fast as possible
        time.sleep(10)
        backfill, backfill_rate = sample(stack, args.seconds)
        stack.compose("stop", "emulator")
        time.sleep(15)  # let the loader drain and the merges settle
        stack.rows("OPTIMIZE TABLE bronze.wiki_raw FINAL")
        print(table("Live rate", live, live_rate))
        print()
        print(table("Backfill", backfill, backfill_rate))
        print()
        print(disk(stack))
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)


if __name__ == "__main__":
    main()

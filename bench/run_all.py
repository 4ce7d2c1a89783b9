"""Every benchmark, one after the other, then bench/SUMMARY.md. About 30 minutes.

Run: .venv/bin/python bench/run_all.py   (needs RabbitMQ, like the tests)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_local_clickhouse.py",
    "bench_loader.py",
    "bench_dedup.py",
    "bench_dbt.py",
    "bench_dashboard.py",
    "bench_pipeline.py",
    "bench_dumps.py",
    "bench_readers.py",
    "bench_drill.py",
]


def main() -> None:
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(BENCH / script)], check=True, cwd=BENCH.parent)
    subprocess.run([sys.executable, str(BENCH / "report.py")], check=True, cwd=BENCH.parent)


if __name__ == "__main__":
    main()

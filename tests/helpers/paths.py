"""Where things are: the checkout, the shared recordings, the tests' own fixtures."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "fixtures"
# the recording most tests replay: real recentchange events, NDJSON
RAW = SHARED_DATA / "recentchange" / "2024-08-22_yearfunla-wikimedia-stream-monitor_raw.ndjson"
# production's ClickHouse users, as the tests' embedded servers load them; the environment
# variable WIKI_EVENTS_USERS_D names another folder (bench/grant_mutations.py: a copy with
# one grant taken away). Only the tests read it, never the product.
USERS_D = Path(
    os.environ.get("WIKI_EVENTS_USERS_D") or ROOT / "deploy" / "clickhouse" / "users.d"
).resolve()

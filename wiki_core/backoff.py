"""The backoff every retry loop uses: the reader's reconnects and republishes, the
loader's reconnects and inserts."""

from __future__ import annotations

import random


def backoff(attempt: int, cap: float, base: float = 0.5) -> float:
    """Exponential backoff with full jitter, capped."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 16)))

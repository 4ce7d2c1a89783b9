"""What one user may take from the server: queries at once, threads, quotas.

Every engine query runs as the engine's one user (access.py), so ClickHouse would count
all of them together: its ``max_concurrent_queries_for_user`` and its quotas are counted
here instead, per HTTP user, with the limits ClickHouse read from the users file. chDB
sets no limit on its process list, so the server-wide ``max_concurrent_queries`` is here
too. Each user's engine calls run on worker threads of its own (an anyio capacity
limiter per user), so one user's queue of slow queries never holds another's threads.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .errors import ClickHouseError

if TYPE_CHECKING:
    from .access import Account

T = TypeVar("T")

TOO_MANY_SIMULTANEOUS_QUERIES = 202
QUOTA_EXCEEDED = 201
# worker threads per user; a user's queries past it wait their turn, others' do not
USER_THREADS = 16
MAX_CONCURRENT_QUERIES = 1000  # LOCAL_CLICKHOUSE_MAX_CONCURRENT_QUERIES, as a server's default

# -- quotas -----------------------------------------------------------------------------

# system.quota_limits columns -> the resource's name in ClickHouse's messages
QUOTA_RESOURCES = {
    "max_queries": "queries",
    "max_query_selects": "query_selects",
    "max_query_inserts": "query_inserts",
    "max_errors": "errors",
    "max_result_rows": "result_rows",
    "max_result_bytes": "result_bytes",
    "max_read_rows": "read_rows",
    "max_read_bytes": "read_bytes",
    "max_execution_time": "execution_time",
    "max_written_bytes": "written_bytes",
}


@dataclass
class QuotaInterval:
    duration: int
    limits: dict[str, float]  # resource -> maximum
    used: dict[str, float] = field(default_factory=dict)
    ends: float = 0.0


@dataclass
class Quota:
    """A ClickHouse quota, counted here per user (its key is the user's name)."""

    name: str
    intervals: list[QuotaInterval]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __getstate__(self) -> dict[str, Any]:  # a probe's answer crosses processes
        return {"name": self.name, "intervals": self.intervals}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self.intervals = state["name"], state["intervals"]
        self.lock = threading.Lock()

    def same_limits(self, other: Quota | None) -> bool:
        """Whether ``other`` is this quota with the same intervals and maxima (a reload
        keeps the counters of such a quota, as a server keeps its users' usage)."""
        return (
            other is not None
            and other.name == self.name
            and [(i.duration, i.limits) for i in other.intervals]
            == [(i.duration, i.limits) for i in self.intervals]
        )

    def _roll(self, now: float) -> None:
        for interval in self.intervals:
            if now >= interval.ends:
                interval.used = {}
                # ClickHouse aligns intervals to multiples of their length
                interval.ends = (now // interval.duration + 1) * interval.duration

    def check(self, user: str, now: float | None = None) -> None:
        """QUOTA_EXCEEDED if an interval's resource is already used up."""
        now = time.time() if now is None else now
        with self.lock:
            self._roll(now)
            for interval in self.intervals:
                for resource, maximum in interval.limits.items():
                    used = interval.used.get(resource, 0.0)
                    if used >= maximum:
                        raise quota_exceeded(self.name, user, interval, resource, used, maximum)

    def add(self, usage: Mapping[str, float], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.lock:
            self._roll(now)
            for interval in self.intervals:
                for resource, amount in usage.items():
                    interval.used[resource] = interval.used.get(resource, 0.0) + amount


def quota_exceeded(
    name: str, user: str, interval: QuotaInterval, resource: str, used: float, maximum: float
) -> ClickHouseError:
    ends = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(interval.ends))

    def num(x: float) -> str:
        return f"{x:g}" if resource == "execution_time" else str(int(x))

    return ClickHouseError(
        201,
        f"Quota for user `{user}` for {interval.duration}s has been exceeded: "
        f"{resource} = {num(used)}/{num(maximum)}. Interval will end at {ends}. "
        f"Name of quota template: `{name}`",
        "QUOTA_EXCEEDED",
    )


_limiter: contextvars.ContextVar[anyio.CapacityLimiter | None] = contextvars.ContextVar(
    "limiter", default=None
)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a worker thread of the current request's user."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=_limiter.get())


class Limits:
    """Per-user query slots, worker threads and quotas, and the server-wide slot count."""

    def __init__(self, accounts: Iterable[Account], max_queries: int = MAX_CONCURRENT_QUERIES):
        self.max_queries = max_queries
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._total = 0
        self._threads: dict[str, anyio.CapacityLimiter] = {}
        self._sizes = {
            a.name: min(a.max_concurrent or USER_THREADS, USER_THREADS) for a in accounts
        }

    def update(self, accounts: Iterable[Account]) -> None:
        """The users after a reload: a new user's thread count (a user's limiter, once
        made, stays: its queries may be waiting on it)."""
        for a in accounts:
            self._sizes.setdefault(a.name, min(a.max_concurrent or USER_THREADS, USER_THREADS))

    def use_threads_of(self, account: Account) -> None:
        """From here on, this request's engine calls run on ``account``'s threads."""
        limiter = self._threads.get(account.name)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self._sizes.get(account.name, USER_THREADS))
            self._threads[account.name] = limiter
        _limiter.set(limiter)

    def start(self, account: Account, kind: str) -> Callable[[Mapping[str, float]], None]:
        """Take a query slot for ``account`` (TOO_MANY_SIMULTANEOUS_QUERIES past its
        ``max_concurrent_queries_for_user`` or the server's limit) and count the query
        in its quota (QUOTA_EXCEEDED when an interval is used up). Returns the function
        that gives the slot back with the query's use of the quota's other resources."""
        if account.quota is not None:
            account.quota.check(account.name)
        with self._lock:
            running = self._running.get(account.name, 0)
            if account.max_concurrent and running >= account.max_concurrent:
                raise ClickHouseError(
                    TOO_MANY_SIMULTANEOUS_QUERIES,
                    f"Too many simultaneous queries for user {account.name}. Current: "
                    f"{running}, maximum: {account.max_concurrent}",
                    "TOO_MANY_SIMULTANEOUS_QUERIES",
                )
            if self._total >= self.max_queries:
                raise ClickHouseError(
                    TOO_MANY_SIMULTANEOUS_QUERIES,
                    f"Too many simultaneous queries. Maximum: {self.max_queries}",
                    "TOO_MANY_SIMULTANEOUS_QUERIES",
                )
            self._running[account.name] = running + 1
            self._total += 1
        if account.quota is not None:
            counted = {"queries": 1.0}
            if kind in ("select", "insert"):
                counted[f"query_{kind}s"] = 1.0
            account.quota.add(counted)
        done = False

        def finish(usage: Mapping[str, float]) -> None:
            nonlocal done
            if done:
                return
            done = True
            with self._lock:
                self._running[account.name] -= 1
                self._total -= 1
            if account.quota is not None and usage:
                account.quota.add(usage)

        return finish

    def running(self, account: Account) -> int:
        with self._lock:
            return self._running.get(account.name, 0)

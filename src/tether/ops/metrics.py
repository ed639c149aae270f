"""Prometheus metrics: requests and their latency by route template and status, and the
database pool of each process.

Under `tether serve --workers N` (N > 1) every worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode; `tether serve` makes a fresh
directory and sets the variable before any worker imports prometheus_client), and a scrape,
whichever worker answers it, merges the files of every worker: counters and histograms are
summed, and the pool gauges are listed per process (a `pid` label), since a pool is sized per
process. A worker that stops removes its gauges; one that died is noticed at the next scrape.
Without the variable (one worker, tests, an app served some other way) the process's own
samples are served."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# prometheus_client chose its mode when it was first imported, from the variable as it was
# then: follow its choice, not the variable's value now.
_multiproc_dir = (
    os.environ.get(MULTIPROC_ENV) if getattr(values.ValueClass, "_multiprocess", False) else None
)

REGISTRY = CollectorRegistry(auto_describe=True)
_LABELS = ("method", "route", "status")

REQUESTS = Counter(
    "tether_http_requests",
    "HTTP requests answered, by method, route template and status.",
    _LABELS,
    registry=REGISTRY,
)
DURATION = Histogram(
    "tether_http_request_duration_seconds",
    "Time from the request's arrival in Tether to the end of its response.",
    _LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
POOL_SIZE = Gauge(
    "tether_db_pool_size",
    "Connections the process keeps in its database pool (TETHER_DB_POOL_SIZE).",
    registry=REGISTRY,
    multiprocess_mode="liveall",
)
POOL_CHECKED_OUT = Gauge(
    "tether_db_pool_checked_out",
    "Pooled database connections in use by requests.",
    registry=REGISTRY,
    multiprocess_mode="liveall",
)
POOL_OVERFLOW = Gauge(
    "tether_db_pool_overflow",
    "Connections open beyond the pool size (at most TETHER_DB_MAX_OVERFLOW).",
    registry=REGISTRY,
    multiprocess_mode="liveall",
)

# Route templates and statuses are few; the methods a client sends are not ours to choose.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class RequestMetrics:
    """Counts one finished request. The labelled children are looked up once per label set:
    `labels()` takes a lock and builds a tuple on every call."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (REQUESTS.labels(*labels), DURATION.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def sample_pool(engine: AsyncEngine) -> None:
    pool: Any = engine.pool
    if not hasattr(pool, "checkedout"):  # a pool without a size (SQLite in memory)
        return
    POOL_SIZE.set(pool.size())
    POOL_CHECKED_OUT.set(pool.checkedout())
    POOL_OVERFLOW.set(max(0, pool.overflow()))


class PoolSampler:
    """Samples the pool once a second, off the request path; a scrape samples its own
    process again first."""

    def __init__(self, engine: AsyncEngine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        sample_pool(self.engine)
        self._task = asyncio.create_task(self._run(), name="tether-pool-sampler")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            sample_pool(self.engine)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_processes(path: str) -> None:
    """mark_process_dead for every process that left live gauges and is gone (a worker that
    crashed and that uvicorn replaced)."""
    for name in os.listdir(path):
        if not name.startswith("gauge_live") or not name.endswith(".db"):
            continue
        pid = name[: -len(".db")].rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def render() -> bytes:
    """The exposition of every worker's samples."""
    if _multiproc_dir is None:
        return generate_latest(REGISTRY)
    _forget_dead_processes(_multiproc_dir)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=_multiproc_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_stopping() -> None:
    """This worker's gauges go with it; its counts stay in the sums."""
    if _multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), _multiproc_dir)  # type: ignore[no-untyped-call]

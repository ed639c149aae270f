"""A sliding-window counter: the `limits` library's, in Redis when one is configured (so every
process and node shares one budget); the same algorithm in this process's memory otherwise, or
while Redis cannot be reached."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from math import floor, inf
from typing import TypeVar

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.util import WindowStats

log = logging.getLogger("tether.ratelimit")

T = TypeVar("T")

# After Redis fails, limits are counted in memory for this long before Redis is tried again.
REDIS_RETRY_SECONDS = 10.0
# Each Redis call waits at most this long: a hung Redis must not hang requests.
REDIS_TIMEOUT_SECONDS = 0.5


class MemoryWindows:
    """limits' sliding window counter, kept in this process's memory: the same windows (aligned
    to multiples of the limit's period), the same weighting of the previous window and the same
    answers as its SlidingWindowCounterRateLimiter over its MemoryStorage (tests compare the two
    hit by hit). limits spends ~60 Python calls on a hit there (string keys for both windows,
    a lock per key, three reads with expiry checks, wrappers); an API key's hit is on every
    request, and here it is a dict lookup and some arithmetic. Nothing here awaits, so no other
    request can come between the count and its increment: no lock is needed, and no hit is
    taken back. Redis keeps limits' own strategy."""

    SWEEP_SECONDS = 10.0

    def __init__(self) -> None:
        # (amount, period, identifiers): [window number, its count, the previous window's count]
        self.windows: dict[tuple[int, int, tuple[str, ...]], list[int]] = {}
        self._next_sweep = 0.0

    def _window(
        self, item: RateLimitItem, identifiers: tuple[str, ...], now: float
    ) -> tuple[list[int] | None, int, int, float, int]:
        """The counter (None if there is none), the current window's number, and limits'
        figures: the previous window's count and its time left, the current window's count."""
        period = item.get_expiry()
        number = int(now / period)
        counter = self.windows.get((item.amount, period, identifiers))
        if counter is None or counter[0] < number - 1:
            return None, number, 0, 0.0, 0
        if counter[0] == number:
            previous, current = counter[2], counter[1]
        else:  # the counter's window is the previous one
            previous, current = counter[1], 0
        previous_ttl = (1 - ((now - period) / period) % 1) * period if previous else 0.0
        return counter, number, previous, previous_ttl, current

    @staticmethod
    def _weighted(item: RateLimitItem, previous: int, previous_ttl: float, current: int) -> float:
        return previous * previous_ttl / item.get_expiry() + current

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        if cost > item.amount:
            return False
        counter, number, previous, previous_ttl, current = self._window(item, identifiers, now)
        if floor(self._weighted(item, previous, previous_ttl, current)) + cost > item.amount:
            return False
        if counter is None:
            self.windows[(item.amount, item.get_expiry(), identifiers)] = [number, cost, 0]
        elif counter[0] == number:
            counter[1] += cost
        else:
            counter[:] = [number, cost, counter[1]]
        return True

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        _, _, previous, previous_ttl, current = self._window(item, identifiers, time.time())
        return self._weighted(item, previous, previous_ttl, current) < item.amount - cost + 1

    def stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        _, _, previous, previous_ttl, current = self._window(item, identifiers, now)
        weighted = self._weighted(item, previous, previous_ttl, current)
        remaining = max(0, item.amount - floor(weighted))
        if not (previous or current):
            return WindowStats(now, remaining)
        period = item.get_expiry()
        previous_reset_in = current_reset_in = inf
        if previous:
            previous_reset_in = previous_ttl % (period / previous)
        if current:
            current_reset_in = ((1 - (now / period) % 1) * period + period) % period
        return WindowStats(now + min(previous_reset_in, current_reset_in), remaining)

    def _sweep(self, now: float) -> None:
        """Drop the counters whose window and its successor have passed: they count nothing."""
        self._next_sweep = now + self.SWEEP_SECONDS
        stale = [key for key, counter in self.windows.items() if counter[0] < int(now / key[1]) - 1]
        for key in stale:
            del self.windows[key]


def redis_storage_uri(url: str) -> str:
    """limits names its asyncio Redis storage `async+redis://`; operators write `redis://`."""
    return url if url.startswith("async+") else f"async+{url}"


class Limiter:
    """hit/test/stats on the shared storage, or in memory while Redis is away. A Redis that
    fails is logged once (by exception type: the URL can carry a password) and retried after
    REDIS_RETRY_SECONDS; requests keep being served and limited per process meanwhile."""

    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        self.memory = MemoryWindows()
        self.redis: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            storage = RedisStorage(
                redis_storage_uri(redis_url),
                key_prefix=key_prefix,
                connect_timeout=REDIS_TIMEOUT_SECONDS,
                stream_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self.redis = SlidingWindowCounterRateLimiter(storage)
        self.retry_seconds = REDIS_RETRY_SECONDS
        self._redis_down_until = 0.0
        self._redis_down = False

    @property
    def shared(self) -> bool:
        """Whether the counts are Redis's right now."""
        return self.redis is not None and not self._redis_down

    def _remote(self) -> SlidingWindowCounterRateLimiter | None:
        if self.redis is None:
            return None
        if self._redis_down and time.monotonic() < self._redis_down_until:
            return None
        return self.redis

    def _failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + self.retry_seconds
        if not self._redis_down:
            self._redis_down = True
            log.warning(
                "Redis unavailable (%s): rate limits are counted per process until it is "
                "back; retrying every %.0f s",
                type(exc).__name__,
                self.retry_seconds,
            )

    def _recovered(self) -> None:
        if self._redis_down:
            self._redis_down = False
            log.warning("Redis is back: rate limits are shared again")

    async def _remotely(
        self, call: Callable[[SlidingWindowCounterRateLimiter], Awaitable[T]]
    ) -> T | None:
        """`call` on Redis when it is there and answers, else None."""
        remote = self._remote()
        if remote is None:
            return None
        try:
            result = await call(remote)
        except Exception as exc:
            self._failed(exc)
            return None
        self._recovered()
        return result

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        shared = await self._remotely(lambda limiter: limiter.hit(item, *identifiers))
        return self.memory.hit(item, *identifiers) if shared is None else shared

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        shared = await self._remotely(lambda limiter: limiter.test(item, *identifiers))
        return self.memory.test(item, *identifiers) if shared is None else shared

    async def stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        shared = await self._remotely(lambda limiter: limiter.get_window_stats(item, *identifiers))
        return self.memory.stats(item, *identifiers) if shared is None else shared

"""The limiter's storage: Redis when configured, this process's memory when Redis is away,
and Redis again once it is back; the client address behind trusted proxies."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from tests.support import free_port
from tether.ratelimit.service import client_ip
from tether.ratelimit.storage import Limiter, MemoryWindows

REDIS = "redis://127.0.0.1:6379/0"


async def redis_reachable() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 6379), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


@contextlib.asynccontextmanager
async def tcp_proxy(port: int, target: int) -> AsyncIterator[None]:
    """127.0.0.1:port forwarding to 127.0.0.1:target, until the block ends (then every
    connection through it is cut)."""
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        writers.extend((writer, upstream_writer))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


class TestFallback:
    async def test_an_unreachable_redis_falls_back_to_memory_and_warns_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        limiter = Limiter(f"redis://127.0.0.1:{free_port()}/0", "t")
        item = RateLimitItemPerMinute(2)
        with caplog.at_level(logging.WARNING, logger="tether.ratelimit"):
            results = [await limiter.hit(item, "x") for _ in range(3)]
            limiter._redis_down_until = 0  # retry now: still down, and no second warning
            assert not await limiter.test(item, "x")
        assert results == [True, True, False]
        assert not limiter.shared
        warnings = [r for r in caplog.records if r.name == "tether.ratelimit"]
        assert len(warnings) == 1
        assert "ConnectionError" in warnings[0].getMessage()

    async def test_limits_are_shared_again_when_redis_returns(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        if not await redis_reachable():
            pytest.skip("no Redis on 127.0.0.1:6379")
        port = free_port()
        limiter = Limiter(f"redis://127.0.0.1:{port}/0", f"tether-test-{secrets.token_hex(6)}")
        limiter.retry_seconds = 0.2
        item = RateLimitItemPerMinute(100)
        async with tcp_proxy(port, 6379):
            assert await limiter.hit(item, "k")
            assert limiter.shared
        with caplog.at_level(logging.WARNING, logger="tether.ratelimit"):
            assert await limiter.hit(item, "k")  # Redis gone: counted in memory
            assert not limiter.shared
            await asyncio.sleep(0.3)
            async with tcp_proxy(port, 6379):
                assert await limiter.hit(item, "k")
                assert limiter.shared
                stats = await limiter.stats(item, "k")
        # Redis holds the hits made while it was reachable (two), not the one in memory.
        assert stats.remaining == 98
        messages = [r.getMessage() for r in caplog.records if r.name == "tether.ratelimit"]
        assert len(messages) == 2
        assert "back" in messages[1]


class Clock:
    """time.time() for both limits and MemoryWindows, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000.25
        monkeypatch.setattr(time, "time", lambda: self.now)


class TestMemory:
    async def test_answers_as_limits_does_hit_by_hit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = Clock(monkeypatch)
        ours = MemoryWindows()
        theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
        items = [RateLimitItemPerSecond(3), RateLimitItemPerMinute(5), parse("7 per 2 seconds")]
        chance = random.Random(7)
        refused = 0
        for _ in range(3000):
            clock.now += chance.choice([0.0, 0.01, 0.3, 0.9, 1.7, 4.0, 25.0])
            item = chance.choice(items)
            who = chance.choice(["a", "b"])
            cost = chance.choice([1, 1, 1, 2, 9])
            operation = chance.choice(["hit", "hit", "test", "stats"])
            if operation == "hit":
                answer = await theirs.hit(item, who, cost=cost)
                assert ours.hit(item, who, cost=cost) == answer
                refused += not answer
            elif operation == "test":
                assert ours.test(item, who, cost=cost) == await theirs.test(item, who, cost=cost)
            else:
                mine, expected = ours.stats(item, who), await theirs.get_window_stats(item, who)
                assert mine.remaining == expected.remaining
                assert mine.reset_time == pytest.approx(expected.reset_time)
        assert 300 < refused < 1500  # both answers were exercised

    def test_a_refused_hit_counts_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        Clock(monkeypatch)
        windows = MemoryWindows()
        item = RateLimitItemPerMinute(2)
        assert [windows.hit(item, "k") for _ in range(4)] == [True, True, False, False]
        assert windows.stats(item, "k").remaining == 0
        assert windows.windows[(2, 60, ("k",))][1] == 2

    def test_counters_that_count_nothing_are_swept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = Clock(monkeypatch)
        windows = MemoryWindows()
        second, minute = RateLimitItemPerSecond(5), RateLimitItemPerMinute(5)
        for n in range(50):
            windows.hit(second, str(n))
        windows.hit(minute, "slow")
        assert len(windows.windows) == 51
        clock.now += windows.SWEEP_SECONDS  # past the per-second windows and their successors
        windows.hit(second, "late")
        assert set(windows.windows) == {(5, 60, ("slow",)), (5, 1, ("late",))}


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {
        "client": (peer, 1234),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


class TestClientIp:
    trusted = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))

    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            ("192.0.2.1", ("6.6.6.6",), "192.0.2.1"),  # not a proxy: the header is ignored
            ("10.0.0.1", ("6.6.6.6, 192.0.2.1",), "192.0.2.1"),
            ("10.0.0.1", ("192.0.2.1, 10.0.0.2",), "192.0.2.1"),  # two proxies
            ("10.0.0.1", ("6.6.6.6", "192.0.2.1"), "192.0.2.1"),  # two header lines
            ("10.0.0.1", (), "10.0.0.1"),
            ("10.0.0.1", ("not-an-ip",), "10.0.0.1"),
            ("10.0.0.1", ("10.0.0.3",), "10.0.0.3"),  # only proxies: the left-most
            ("::1", ("2001:db8::1",), "2001:db8::1"),
        ],
    )
    def test_the_client_behind_trusted_proxies(
        self, peer: str, forwarded: tuple[str, ...], expected: str
    ) -> None:
        assert client_ip(scope(peer, *forwarded), self.trusted) == expected

    def test_without_trusted_proxies_the_peer(self) -> None:
        assert client_ip(scope("10.0.0.1", "192.0.2.1"), ()) == "10.0.0.1"

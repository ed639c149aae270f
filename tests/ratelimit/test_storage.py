"""The limiter's storage: Redis when configured, this process's memory when Redis is away,
and Redis again once it is back; the client address behind trusted proxies."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections.abc import AsyncIterator

import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from tests.support import free_port
from tether.ratelimit.service import client_ip
from tether.ratelimit.storage import LeanMemoryStorage, Limiter

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


class TestMemory:
    async def test_expired_counters_are_swept(self) -> None:
        storage = LeanMemoryStorage()
        storage.SWEEP_SECONDS = 0
        item = RateLimitItemPerSecond(5)
        limiter = SlidingWindowCounterRateLimiter(storage)
        for n in range(50):
            await limiter.hit(item, str(n))
        assert len(storage.storage) == 50
        await asyncio.sleep(2.2)  # the window and its successor have passed
        await limiter.hit(item, "late")
        await asyncio.sleep(0.05)  # the sweep task runs
        assert storage.storage
        assert all("late" in key for key in storage.storage)


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

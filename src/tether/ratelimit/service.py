"""The three rate limits and the client address they count by.

- Per API key: every request a key authenticates costs one hit, against the key's environment's
  `rateLimitPerMinute` or TETHER_RATE_LIMIT_PER_MINUTE. This is the only limiter call on the
  hot path, and the limit comes with the key's own row: no extra query.
- Per client IP, refused credentials: every 401 counts. An address with refusals on record is
  tested before its next credential is even looked up, and gets 429 once over budget. Addresses
  without refusals in this process skip that test, so well-behaved traffic pays nothing for it;
  with Redis, the budget is still shared (a process that has not yet seen an address's
  refusals does at most one lookup before it learns of them).
- Per client IP, admin login attempts (POST /admin/login and the dashboard's form): counted
  before the body is read and long before the Argon2 verify.

429 answers carry Retry-After and the RateLimit-Limit/-Remaining/-Reset/-Policy headers
(draft-ietf-httpapi-ratelimit-headers). Successful answers do not: that would cost a second
storage call (a second Redis round trip) per request."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, RateLimitItemPerMinute, parse_many
from starlette.types import Scope

from tether.config import Settings
from tether.errors import RateLimited
from tether.ratelimit.storage import Limiter

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_SUSPECTS = 10_000


def client_ip(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """The socket's peer, unless that peer is a trusted proxy: then the right-most address of
    X-Forwarded-For that is not a trusted proxy (the left part of the header is whatever the
    client sent, and proves nothing)."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            hops.extend(hop.strip() for hop in value.decode("latin-1").split(","))
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a trusted proxy wrote something that is not an address
        if not any(address in network for network in trusted):
            return str(address)
    return hops[0] if hops else peer


def _is_trusted(peer: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.limiter = Limiter(settings.redis_url, settings.rate_limit_key_prefix)
        self.default_per_minute = settings.rate_limit_per_minute
        self.failure_limits = parse_many(settings.rate_limit_auth_failures)
        self.login_limits = parse_many(settings.rate_limit_login)
        self.trusted = tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies
        )
        self._per_minute: dict[int, RateLimitItem] = {}
        # Addresses this process has seen refused lately, with when that record lapses.
        self._suspects: dict[str, float] = {}
        self._suspect_seconds = max(item.get_expiry() for item in self.failure_limits)

    def client_ip(self, scope: Scope) -> str:
        return client_ip(scope, self.trusted)

    async def _refusal(self, item: RateLimitItem, *identifiers: str) -> RateLimited:
        stats = await self.limiter.stats(item, *identifiers)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimited(
            headers={
                "Retry-After": str(reset),
                "RateLimit-Limit": str(item.amount),
                "RateLimit-Remaining": str(stats.remaining),
                "RateLimit-Reset": str(reset),
                "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
            }
        )

    async def hit_key(self, key_id: str, per_minute: int | None) -> None:
        """One request by an API key; RateLimited past its environment's budget."""
        amount = self.default_per_minute if per_minute is None else per_minute
        if amount <= 0:
            return
        item = self._per_minute.get(amount)
        if item is None:
            item = self._per_minute.setdefault(amount, RateLimitItemPerMinute(amount))
        if not await self.limiter.hit(item, "key", key_id):
            raise await self._refusal(item, "key", key_id)

    async def before_credentials(self, scope: Scope) -> None:
        """Before a presented credential is looked up: refuse an address over its budget of
        refusals. Free for an address with no refusal on record in this process."""
        if not self._suspects:
            return
        ip = self.client_ip(scope)
        until = self._suspects.get(ip)
        if until is None:
            return
        if until < time.monotonic():
            del self._suspects[ip]
            return
        for item in self.failure_limits:
            if not await self.limiter.test(item, "authfail", ip):
                raise await self._refusal(item, "authfail", ip)

    async def credentials_refused(self, scope: Scope) -> None:
        """A 401: one more refusal for the client's address."""
        ip = self.client_ip(scope)
        for item in self.failure_limits:
            await self.limiter.hit(item, "authfail", ip)
        if len(self._suspects) >= MAX_SUSPECTS:
            self._suspects.clear()
        self._suspects[ip] = time.monotonic() + self._suspect_seconds

    async def login_attempt(self, scope: Scope) -> RateLimited | None:
        """An admin login attempt, before anything else is done with it: the refusal past the
        budget, else None."""
        ip = self.client_ip(scope)
        for item in self.login_limits:
            if not await self.limiter.hit(item, "login", ip):
                return await self._refusal(item, "login", ip)
        return None

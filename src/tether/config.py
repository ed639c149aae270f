"""Settings, read once per process from ``TETHER_*`` variables and a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TETHER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./tether.db",
        description="SQLAlchemy URL. `postgresql://...` is served through asyncpg, "
        "`sqlite:///...` through aiosqlite.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL clients reach Tether at: the `iss` of user tokens and the base "
        "of OAuth redirect URLs.",
    )
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `kid:base64(32 bytes)` AES-256-GCM keys. The first "
        "encrypts; all decrypt. Generate one with `tether secrets generate-key`.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits shared by every process and node "
        "(`redis://host:6379/0`). Without it, each process counts for itself.",
    )
    rate_limit_per_minute: int = Field(
        default=6000,
        ge=0,
        description="Requests per minute per API key, unless the key's environment sets its "
        "own `rateLimitPerMinute`. 0 turns the per-key limit off.",
    )
    rate_limit_auth_failures: str = Field(
        default="60/minute",
        description="Refused credentials (401s) per client IP; past it, requests that present "
        "a credential get 429 before any lookup.",
    )
    rate_limit_login: str = Field(
        default="10/minute",
        description="Admin login attempts (the JSON API and the dashboard form) per client IP, "
        "counted before the password is checked.",
    )
    rate_limit_key_prefix: str = Field(
        default="tether", description="Prefix of the rate-limit keys in Redis."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For names the client. Empty: the client is the socket's peer.",
    )
    db_pool_size: int = Field(
        default=32, ge=1, description="Connections kept per process: the expected concurrency."
    )
    db_max_overflow: int = Field(default=8, ge=0, description="Extra connections under bursts.")
    db_pool_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a pooled connection before a 503."
    )
    db_pool_pre_ping: bool = Field(
        default=False,
        description="Test each pooled connection with a round trip before use. Off by default: "
        "it costs a round trip per request, and a connection broken by a database restart is "
        "detected on its first use anyway, answered with a 503 and replaced.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    admin_session_ttl_seconds: int = Field(
        default=12 * 3600, ge=60, description="Lifetime of an admin login."
    )
    oauth_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of each request to an OAuth provider."
    )
    allow_insecure_oauth_urls: bool = Field(
        default=False,
        description="Allow `http://` OAuth URLs on custom_oauth2 integrations (local only).",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="`json`: one JSON object a line. `text`: for people. `auto`: text when "
        "stderr is a terminal, else JSON.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="Least severe level logged. `info` includes one line per request; "
        "`warning` drops them.",
    )
    metrics_enabled: bool = Field(
        default=True,
        description="Serve `GET /metrics` (Prometheus text format). Off: it answers 404.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, `GET /metrics` needs `Authorization: Bearer <token>`. Unset, "
        "anyone who reaches the port reads it: block it at the proxy (see Metrics).",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # Operators paste the URLs their tools use; map them to the async drivers.
        for plain, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("rate_limit_auth_failures", "rate_limit_login")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # "10/minute", "5 per second; 100/hour": fail at startup, not later
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()

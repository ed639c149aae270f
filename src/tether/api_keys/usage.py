"""`lastUsedAt`, written at most once a minute per key and never on the request's path:
the request only schedules a conditional UPDATE that runs in its own transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tether.api_keys.models import ApiKey
from tether.db.base import utcnow

log = logging.getLogger("tether.api_keys")

INTERVAL = timedelta(seconds=60)


class KeyUsageRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._scheduled: dict[str, float] = {}  # key id -> monotonic time of the last write
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, key_id: str, last_used_at: datetime | None) -> None:
        now = utcnow()
        if last_used_at is not None and now - last_used_at < INTERVAL:
            return
        clock = time.monotonic()
        previous = self._scheduled.get(key_id)
        if previous is not None and clock - previous < INTERVAL.total_seconds():
            return
        if len(self._scheduled) > 10_000:
            self._scheduled.clear()
        self._scheduled[key_id] = clock
        task = asyncio.create_task(self._write(key_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, key_id: str, now: datetime) -> None:
        try:
            async with self._sessionmaker() as session:
                # The condition keeps it to one write a minute across every process.
                await session.execute(
                    update(ApiKey)
                    .where(
                        ApiKey.id == key_id,
                        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - INTERVAL),
                    )
                    .values(last_used_at=now)
                )
                await session.commit()
        except Exception as exc:  # bookkeeping must never fail or slow a request
            log.warning("could not record lastUsedAt for %s: %s", key_id, type(exc).__name__)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

"""Alembic, driven from Python: `tether db upgrade`, `tether db check`, and /readyz."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

import tether
from tether.config import Settings


def _script_location() -> Path:
    package = Path(tether.__file__).parent
    installed = package / "_migrations"  # a wheel carries the folder inside the package
    return installed if installed.is_dir() else package.parents[1] / "migrations"


def alembic_config(settings: Settings | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    if settings is not None:
        config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")


def check(settings: Settings) -> None:
    """Raise if the models and the migrations differ (run against a database at head)."""
    command.check(alembic_config(settings))


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return result.scalar_one_or_none()

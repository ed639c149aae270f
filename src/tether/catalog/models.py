from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.base import Base, new_id, utcnow


class Integration(Base):
    """An app of the catalogue as one environment offers it to its users."""

    __tablename__ = "integrations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("int"))
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    app: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str | None] = mapped_column(String(500))
    client_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    # None means the app's default scopes.
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    authorize_url: Mapped[str | None] = mapped_column(String(2000))
    token_url: Mapped[str | None] = mapped_column(String(2000))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.base import Base, new_id, utcnow


class SigningKey(Base):
    """A customer's key for tenant tokens. Only the public key is ever stored: a generated
    private key is returned once and forgotten."""

    __tablename__ = "signing_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sgk"))
    environment_id: Mapped[str] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    public_key_pem: Mapped[str] = mapped_column(Text)
    # "generated" by Tether, or "imported" from a key the customer made.
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

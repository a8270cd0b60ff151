"""The registry's own signing keys as the database knows them: purpose, status, public JWK.

The private material stays in the files of ``REGISTRY_KEYS_DIR``; whether a key signs, is
published or has been compromised is what this table says, so every worker of every replica
learns a change within seconds (registry/crypto/keystore.py reads it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime

REGISTRY_KEY_STATUSES = ("active", "retired", "compromised")


class RegistryKeyRecord(Base):
    __tablename__ = "registry_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)  # RFC 7638 thumbprint
    purpose: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16))  # active | retired | compromised
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    compromised_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())

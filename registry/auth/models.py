"""Registered clients and the assertion ids they have used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime

ROLES = ("clinic", "employer", "authority", "ministry", "accreditor", "admin")


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    clinic_id: Mapped[str | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    country: Mapped[str | None] = mapped_column(ForeignKey("jurisdictions.code"))
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsedAssertion(Base):
    """A client assertion's ``jti``, kept until the assertion expires, so it is never reused."""

    __tablename__ = "used_assertions"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

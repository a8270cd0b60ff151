"""Jurisdictions, clinics, clinic status history and signing keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, UTCDateTime

CLINIC_STATUSES = ("active", "suspended", "withdrawn")
KEY_STATUSES = ("active", "retired", "compromised")
PURPOSES = ("pre-departure", "return", "in-host", "periodic")


class Jurisdiction(Base):
    __tablename__ = "jurisdictions"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    participating: Mapped[bool] = mapped_column(Boolean, default=True)


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. TJ-DUS-0007
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(ForeignKey("jurisdictions.code"), index=True)
    city: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # current status, mirrors the history
    accredited_from: Mapped[date] = mapped_column(Date)
    accredited_until: Mapped[date | None] = mapped_column(Date)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    annual_quota: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    history: Mapped[list[ClinicStatusEvent]] = relationship(
        back_populates="clinic", order_by="ClinicStatusEvent.effective_at", lazy="selectin"
    )
    keys: Mapped[list[SigningKey]] = relationship(
        back_populates="clinic", order_by="SigningKey.created_at", lazy="selectin"
    )


class ClinicStatusEvent(Base):
    __tablename__ = "clinic_status_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))

    clinic: Mapped[Clinic] = relationship(back_populates="history")


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)  # RFC 7638 thumbprint
    clinic_id: Mapped[str | None] = mapped_column(ForeignKey("clinics.id"), index=True)
    custody: Mapped[str] = mapped_column(String(16))  # clinic-held | custodial
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_private_jwk: Mapped[bytes | None] = mapped_column(LargeBinary)  # custodial only
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    clinic: Mapped[Clinic | None] = relationship(back_populates="keys")
    history: Mapped[list[KeyStatusEvent]] = relationship(
        back_populates="key", order_by="KeyStatusEvent.effective_at"
    )


class KeyStatusEvent(Base):
    __tablename__ = "key_status_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kid: Mapped[str] = mapped_column(ForeignKey("signing_keys.kid"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)

    key: Mapped[SigningKey] = relationship(back_populates="history")

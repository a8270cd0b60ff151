"""The holder's verification log and the other SMART Health Card issuers the registry trusts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime

ISSUER_STATUSES = ("active", "suspended")


class VerificationEvent(Base):
    """One check of one of our certificates, as its holder sees it: who, when, what answer."""

    __tablename__ = "verification_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    result: Mapped[str] = mapped_column(String(24))
    # the verifying organisation's registered name; None for an anonymous check
    verifier_name: Mapped[str | None] = mapped_column(String(200))
    verifier_role: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))  # api | page | cli


class ExternalIssuer(Base):
    """Another SMART Health Card issuer of the trust network, with its keys and revocation lists."""

    __tablename__ = "external_issuers"

    iss: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    # revocation lists by kid, each exactly as the issuer published it
    crl: Mapped[dict[str, Any]] = mapped_column(JSON)
    crl_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    added_by: Mapped[str] = mapped_column(String(128))

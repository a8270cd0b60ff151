"""Ruleset versions, certificates, the cards signed for them, and their revocations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.accreditation.models import Clinic
from registry.db import Base, UTCDateTime

CERTIFICATE_STATUSES = ("valid", "revoked", "superseded")
RULESET_SOURCES = ("file", "extension")


class RulesetVersion(Base):
    """One version of a destination's ruleset, exactly as published; never rewritten."""

    __tablename__ = "rulesets"
    __table_args__ = (UniqueConstraint("destination", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(2), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))  # of the document's RFC 8785 form
    effective_from: Mapped[date] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))  # file | extension
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    loaded_by: Mapped[str] = mapped_column(String(128))


class Certificate(Base):
    """A destination's requirements met by one examination version; the holder's card."""

    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # e.g. KZ-7F3K-9QPX
    examination_id: Mapped[str] = mapped_column(ForeignKey("examinations.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("examination_versions.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    destination: Mapped[str] = mapped_column(String(2))
    purpose: Mapped[str] = mapped_column(String(20))
    ruleset_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    # Before any administrator's extension: what a later extension is measured against.
    base_valid_until: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The current card: its key, revocation id and signing time (its nbf).
    kid: Mapped[str] = mapped_column(String(64), index=True)
    rid: Mapped[str] = mapped_column(String(24))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The card names the holder, so it is sealed like every other piece of personal data.
    sealed_jws: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_holder: Mapped[bytes] = mapped_column(LargeBinary)  # names, birth date, citizenship
    holder_secret_hash: Mapped[str] = mapped_column(String(64), index=True)

    clinic: Mapped[Clinic] = relationship(lazy="joined")
    cards: Mapped[list[CertificateCard]] = relationship(
        back_populates="certificate", order_by="CertificateCard.id", lazy="selectin"
    )


class CertificateCard(Base):
    """Every SMART Health Card ever signed for a certificate, so revocation reaches them all."""

    __tablename__ = "certificate_cards"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    kid: Mapped[str] = mapped_column(String(64), index=True)
    rid: Mapped[str] = mapped_column(String(24))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[date] = mapped_column(Date)

    certificate: Mapped[Certificate] = relationship(back_populates="cards")


class CertificateRevocation(Base):
    """One entry of a key's revocation list; the list's ``ctr`` is the count of its entries."""

    __tablename__ = "certificate_revocations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    kid: Mapped[str] = mapped_column(String(64), index=True)
    rid: Mapped[str] = mapped_column(String(24))
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))


REEVALUATION_STATES = ("pending", "running", "done")


class RulesetReevaluation(Base):
    """Judging the certificates already issued by a version that applies to them: one job each.

    Worked through in batches in certificate id order, in the background; ``after`` (the last
    id judged) is committed with each batch's revocations, so a job stopped anywhere resumes
    after its last whole batch and no certificate is judged twice.
    """

    __tablename__ = "ruleset_reevaluations"
    __table_args__ = (UniqueConstraint("destination", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(2))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | running | done
    not_before: Mapped[date] = mapped_column(Date)  # the version's effective_from
    total: Mapped[int] = mapped_column(Integer, default=0)  # counted when the job starts
    judged: Mapped[int] = mapped_column(Integer, default=0)
    revoked: Mapped[int] = mapped_column(Integer, default=0)
    after: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""Persons (encrypted), their documents (blind-indexed), examinations and immutable versions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, UTCDateTime

VERSION_STATUSES = ("final", "amended", "entered-in-error")


class Person(Base):
    """A migrant. Everything identifying is sealed; only opaque ids stay in the clear."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed_identity: Mapped[bytes] = mapped_column(LargeBinary)  # names, sex, birth date, docs
    sealed_photo: Mapped[bytes | None] = mapped_column(LargeBinary)
    photo_content_type: Mapped[str | None] = mapped_column(String(32))
    # HMAC of normalised Latin family name + birth date: proposes (never asserts) a match
    name_birth_index: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    documents: Mapped[list[PersonDocument]] = relationship(
        back_populates="person", lazy="selectin", order_by="PersonDocument.id"
    )


class PersonDocument(Base):
    """An identity document, findable only through its keyed blind index."""

    __tablename__ = "person_documents"
    __table_args__ = (UniqueConstraint("person_id", "blind_index"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    blind_index: Mapped[str] = mapped_column(String(64), index=True)
    country: Mapped[str] = mapped_column(String(2))
    document_type: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship(back_populates="documents")


class PersonNameKey(Base):
    """A blind index of one family-name variant and the birth date: proposes, never asserts."""

    __tablename__ = "person_name_keys"
    __table_args__ = (UniqueConstraint("person_id", "name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    name_key: Mapped[str] = mapped_column(String(64), index=True)


class ProposedMatch(Base):
    """Two registered persons who may be one: same name variant and birth date, no shared
    document. Kept for review; the histories stay apart until someone decides."""

    __tablename__ = "proposed_matches"
    __table_args__ = (UniqueConstraint("person_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)  # the newer
    candidate_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    basis: Mapped[str] = mapped_column(String(32))  # name-birth
    status: Mapped[str] = mapped_column(String(16))  # proposed | confirmed | rejected
    examination_id: Mapped[str] = mapped_column(ForeignKey("examinations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PersonRelation(Base):
    """A dependant (spouse, child) linked to the worker named in their examination."""

    __tablename__ = "person_relations"
    __table_args__ = (UniqueConstraint("dependant_id", "worker_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dependant_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(16))  # spouse | child | ward
    examination_id: Mapped[str] = mapped_column(ForeignKey("examinations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Examination(Base):
    """One examination as the clinic numbers it; its content lives in immutable versions."""

    __tablename__ = "examinations"
    __table_args__ = (UniqueConstraint("clinic_id", "identifier_system", "identifier_value"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # unguessable, public
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    identifier_system: Mapped[str] = mapped_column(String(255))
    identifier_value: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))  # status of the current version
    current_version: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(2))  # the clinic's country
    destination: Mapped[str | None] = mapped_column(String(2))
    examination_date: Mapped[date] = mapped_column(Date)
    previous_examination_id: Mapped[str | None] = mapped_column(
        ForeignKey("examinations.id"), index=True
    )
    # the migrant's consent (Consent share-history) to show earlier examinations to this clinic
    history_consent: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    versions: Mapped[list[ExaminationVersion]] = relationship(
        back_populates="examination", order_by="ExaminationVersion.version", lazy="selectin"
    )

    @property
    def current(self) -> ExaminationVersion:
        return next(v for v in self.versions if v.version == self.current_version)


class ExaminationVersion(Base):
    """The bundle exactly as signed (sealed), its hash, signature and status; never rewritten."""

    __tablename__ = "examination_versions"
    __table_args__ = (UniqueConstraint("examination_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    examination_id: Mapped[str] = mapped_column(ForeignKey("examinations.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    sealed_bundle: Mapped[bytes] = mapped_column(LargeBinary)
    bundle_sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the signed content
    jws: Mapped[str] = mapped_column(Text)  # detached compact JWS over the canonical bundle
    signing_kid: Mapped[str] = mapped_column(ForeignKey("signing_keys.kid"), index=True)
    custodial: Mapped[bool] = mapped_column(Boolean)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    purpose: Mapped[str] = mapped_column(String(20))
    destination: Mapped[str | None] = mapped_column(String(2))
    examination_date: Mapped[date] = mapped_column(Date)
    practitioner_licence: Mapped[str] = mapped_column(String(64))
    status_reason: Mapped[str | None] = mapped_column(Text)

    examination: Mapped[Examination] = relationship(back_populates="versions")
    results: Mapped[list[TestResult]] = relationship(
        back_populates="version", order_by="TestResult.id", lazy="selectin"
    )


class TestResult(Base):
    """One test of one version: concept and date in the clear, the outcome sealed."""

    __tablename__ = "test_results"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("examination_versions.id"), index=True)
    concept: Mapped[str] = mapped_column(String(40))
    loinc: Mapped[str] = mapped_column(String(16))
    sealed_outcome: Mapped[bytes] = mapped_column(LargeBinary)
    effective: Mapped[date] = mapped_column(Date)

    version: Mapped[ExaminationVersion] = relationship(back_populates="results")

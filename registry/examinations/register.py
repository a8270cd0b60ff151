"""A clinic's own examinations: the searchable list and the annual quota it is held to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accreditation.models import Clinic
from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates.models import Certificate
from registry.crypto.encryption import document_index
from registry.db import UnitOfWork, utcnow
from registry.errors import InvalidResource, Issue, NotFound
from registry.examinations.models import Examination, Person, PersonDocument
from registry.examinations.persons import open_identity

PAGE_LIMIT = 200


@dataclass(frozen=True)
class Quota:
    """How many examinations a clinic has stored in a calendar year against its annual quota."""

    year: int
    limit: int | None  # None: the accreditor set no quota
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def quota(session: Session, clinic: Clinic, year: int) -> Quota:
    """The clinic's use of its quota in ``year``: examinations dated that year, not withdrawn."""
    used = session.scalar(
        select(func.count(Examination.id)).where(
            Examination.clinic_id == clinic.id,
            Examination.status != "entered-in-error",
            Examination.examination_date >= date(year, 1, 1),
            Examination.examination_date <= date(year, 12, 31),
        )
    )
    return Quota(year, clinic.annual_quota, int(used or 0))


def enforce_quota(session: Session, clinic: Clinic, examination_date: date) -> None:
    """Refuse (422) a new examination once the clinic's quota for its year is used up."""
    if clinic.annual_quota is None:
        return
    used = quota(session, clinic, examination_date.year)
    if used.remaining == 0:
        raise InvalidResource(
            issues=[
                Issue(
                    "business-rule",
                    f"clinic {clinic.id} has used its annual quota of {clinic.annual_quota} "
                    f"examinations for {examination_date.year} ({used.used} stored); the "
                    "accreditor of its country can raise it",
                    "Bundle.entry.resource.ofType(Encounter).period.start",
                )
            ]
        )


@dataclass(frozen=True)
class RegisterEntry:
    """One examination in the clinic's list: who, when, where to, and its certificates."""

    id: str
    number: str
    status: str
    version: int
    purpose: str
    destination: str | None
    examination_date: date
    updated_at: datetime
    holder_name: str
    birth_date: date
    document_hint: str | None
    certificates: list[Certificate] = field(default_factory=list)


@dataclass(frozen=True)
class Register:
    """A page of the clinic's examinations, newest first, and its quota this year."""

    clinic_id: str
    total: int
    entries: list[RegisterEntry]
    quota: Quota


def list_examinations(
    uow: UnitOfWork,
    *,
    principal: Principal,
    search: str | None = None,
    document_country: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> Register:
    """The calling clinic's examinations, found by its own number or a document; audited.

    ``search`` matches the clinic's examination number (a prefix) or, with
    ``document_country``, a document number through the blind index (names are sealed, so
    they cannot be searched).
    """
    authorize(principal, "examination.read", clinic_id=principal.clinic_id)
    session = uow.session
    clinic = session.get(Clinic, principal.clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {principal.clinic_id!r}")
    now = now or utcnow()
    query = select(Examination).where(Examination.clinic_id == clinic.id)
    if status:
        query = query.where(Examination.status == status)
    text = (search or "").strip()
    if text:
        by_number = Examination.identifier_value.startswith(text, autoescape=True)
        if document_country:
            index = document_index(uow.index_key, country=document_country, number=text)
            holders = select(PersonDocument.person_id).where(PersonDocument.blind_index == index)
            query = query.where(by_number | Examination.person_id.in_(holders))
        else:
            query = query.where(by_number)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(Examination.updated_at.desc(), Examination.id)
        .limit(min(max(limit, 1), PAGE_LIMIT))
        .offset(max(offset, 0))
    ).all()
    certificates: dict[str, list[Certificate]] = {}
    if rows:
        for certificate in session.scalars(
            select(Certificate)
            .where(Certificate.examination_id.in_([r.id for r in rows]))
            .order_by(Certificate.issued_at.desc(), Certificate.id)
        ):
            certificates.setdefault(certificate.examination_id, []).append(certificate)
    entries = []
    for examination in rows:
        person = session.get(Person, examination.person_id)
        assert person is not None
        identity = open_identity(person, uow.cipher)
        entries.append(
            RegisterEntry(
                id=examination.id,
                number=examination.identifier_value,
                status=examination.status,
                version=examination.current_version,
                purpose=examination.purpose,
                destination=examination.destination,
                examination_date=examination.examination_date,
                updated_at=examination.updated_at,
                holder_name=identity.display_name,
                birth_date=identity.birth_date,
                document_hint=identity.document_hint,
                certificates=certificates.get(examination.id, []),
            )
        )
    audit(
        session,
        actor=principal,
        action="examination.list",
        object_type="Clinic",
        object_id=clinic.id,
        detail={"searched": bool(text), "shown": len(entries), "total": total},
        at=now,
    )
    return Register(clinic.id, total, entries, quota(session, clinic, now.year))

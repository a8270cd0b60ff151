"""One person across clinics and countries: proposed matches, earlier examinations, lookups.

The rules and their false-match risks are in docs/linkage.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from registry.accreditation.models import Clinic
from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates.models import Certificate
from registry.crypto.encryption import DataCipher, document_index
from registry.db import UnitOfWork, dialect_insert, row_of, utcnow
from registry.errors import Forbidden, NotFound
from registry.examinations.models import (
    Examination,
    Person,
    PersonDocument,
    PersonNameKey,
    PersonRelation,
    ProposedMatch,
)
from registry.examinations.persons import match_or_create, name_keys, open_identity
from registry.fhir import PersonData, RelatedPersonData
from registry.fhir import purpose_of_use as purpose_of_use_codes
from registry.transparency.reasons import revocation_code

MAX_PROPOSALS = 5  # a very common name with a round birth date must not flood the review


def propose_matches(
    session: Session,
    *,
    person: Person,
    data: PersonData,
    created: bool,
    others: Sequence[str],
    examination_id: str,
    index_key: bytes,
    now: datetime,
) -> list[ProposedMatch]:
    """Record, for review, other persons this one may be; histories are never merged here.

    A document shared with another registered person is proposed whatever happened; a name
    variant and birth date in common only when this person was new to the registry.
    ``others`` are the other persons holding one of its documents, by id, as matching found
    them (``persons.match_or_create``).
    """
    candidates: dict[str, str] = {}
    if created:
        # a new person: its documents are known only to someone with another birth date (a
        # mistyped number, a reissued series, a borrowed passport), or its names propose
        for other in sorted(others)[:MAX_PROPOSALS]:
            candidates.setdefault(other, "document-other-birth-date")
        keys = sorted(name_keys(index_key, data))
        for other in session.scalars(
            select(PersonNameKey.person_id)
            .where(PersonNameKey.name_key.in_(keys), PersonNameKey.person_id != person.id)
            .distinct()
            .order_by(PersonNameKey.person_id)
            .limit(MAX_PROPOSALS)
        ):
            candidates.setdefault(other, "name-birth")
        known: set[str] = set()
    else:
        for other in others:
            candidates.setdefault(other, "shared-document")
        if not candidates:
            return []
        known = {
            other
            for pair in session.execute(
                select(ProposedMatch.person_id, ProposedMatch.candidate_id).where(
                    (ProposedMatch.person_id == person.id)
                    | (ProposedMatch.candidate_id == person.id)
                )
            )
            for other in pair
        }
    proposals = [
        ProposedMatch(
            person_id=person.id,
            candidate_id=candidate,
            basis=basis,
            status="proposed",
            examination_id=examination_id,
            created_at=now,
        )
        for candidate, basis in sorted(candidates.items())
        if candidate not in known
    ]
    if proposals:
        # a concurrent examination of the same person may propose the same pair: not an error
        table = cast(Table, ProposedMatch.__table__)
        session.connection().execute(
            dialect_insert(session)(table).on_conflict_do_nothing(
                index_elements=["person_id", "candidate_id"]
            ),
            [row_of(proposal, without_id=True) for proposal in proposals],
        )
    return proposals


def link_dependant(
    session: Session,
    *,
    dependant: Person,
    related: list[RelatedPersonData],
    examination_id: str,
    cipher: DataCipher,
    index_key: bytes,
    now: datetime,
) -> list[PersonRelation]:
    """Link an examined spouse or child to the worker(s) the bundle names.

    The worker is the registered person holding one of the named documents with the same
    birth date; a worker not registered yet is registered from the RelatedPerson, so their own
    examination later joins them through the document. A document match with another birth
    date links nobody (and registers nobody): it is a typing error or someone else.
    """
    links = []
    for relation in related:
        indexes = [
            document_index(index_key, country=d.country, number=d.number)
            for d in relation.person.documents
        ]
        holders = session.scalars(
            select(Person)
            .join(PersonDocument, PersonDocument.person_id == Person.id)
            .where(PersonDocument.blind_index.in_(indexes))
            .distinct()
            .order_by(Person.id)
        ).all()
        if holders:
            same_birth = [
                p
                for p in holders
                if open_identity(p, cipher).birth_date == relation.person.birth_date
            ]
            if not same_birth:
                continue
            worker = same_birth[0]
        else:
            worker = match_or_create(
                session, person=relation.person, cipher=cipher, index_key=index_key, now=now
            ).person
            session.flush()
        if worker.id == dependant.id:
            continue
        existing = session.scalars(
            select(PersonRelation).where(
                PersonRelation.dependant_id == dependant.id, PersonRelation.worker_id == worker.id
            )
        ).first()
        if existing is None:
            existing = PersonRelation(
                dependant_id=dependant.id,
                worker_id=worker.id,
                relationship=relation.dependant_role,
                examination_id=examination_id,
                created_at=now,
            )
            session.add(existing)
        links.append(existing)
    return links


def previous_pre_departure(session: Session, *, person_id: str, before: date) -> Examination | None:
    """The person's latest pre-departure examination on or before a return examination."""
    return session.scalars(
        select(Examination)
        .where(
            Examination.person_id == person_id,
            Examination.purpose == "pre-departure",
            Examination.status != "entered-in-error",
            Examination.examination_date <= before,
        )
        .order_by(Examination.examination_date.desc(), Examination.created_at.desc())
        .limit(1)
    ).first()


# -- earlier examinations, with consent ---------------------------------------------------------


@dataclass(frozen=True)
class EarlierExamination:
    """What a clinic sees of an earlier examination: where, when, why, and its verdicts."""

    id: str
    examination_date: date
    clinic: dict[str, str]
    purpose: str
    destination: str | None
    status: str
    linked: bool  # this examination names it as its previous one
    certified_for: list[dict[str, object]]
    referrals: list[dict[str, object]]


@dataclass(frozen=True)
class History:
    """The earlier examinations of the person examined in one examination."""

    examination_id: str
    purpose_of_use: str
    earlier: list[EarlierExamination]
    read_at: datetime


def examination_history(
    uow: UnitOfWork,
    *,
    principal: Principal,
    examination_id: str,
    purpose_of_use: str,
    now: datetime | None = None,
) -> History:
    """The person's earlier examinations, for the clinic examining them now and with consent."""
    from registry.referrals.models import Referral

    authorize(principal, "examination.read")
    purpose = purpose_of_use_codes.accepted(purpose_of_use, purpose_of_use_codes.CLINIC)
    now = now or utcnow()
    session = uow.session
    examination = session.get(Examination, examination_id)
    if examination is None or principal.clinic_id != examination.clinic_id:
        raise NotFound(f"no examination {examination_id!r}")
    authorize(principal, "examination.read", clinic_id=examination.clinic_id)
    if not examination.history_consent:
        audit(
            session,
            actor=principal,
            action="examination.history-read",
            object_type="Examination",
            object_id=examination.id,
            purpose_of_use=purpose,
            outcome="denied",
            detail={"reason": "no consent"},
            at=now,
        )
        uow.commit()  # the refused attempt stays on the record
        raise Forbidden(
            "the migrant did not consent to sharing earlier examinations "
            "(Consent provision share-history) in this examination"
        )
    rows = session.scalars(
        select(Examination)
        .where(
            Examination.person_id == examination.person_id,
            Examination.id != examination.id,
            Examination.examination_date <= examination.examination_date,
        )
        .order_by(Examination.examination_date.desc(), Examination.created_at.desc())
    ).all()
    ids = [row.id for row in rows]
    clinics = {c.id: c for c in session.scalars(select(Clinic))} if rows else {}
    certificates: dict[str, list[dict[str, object]]] = {}
    for certificate in session.scalars(
        select(Certificate)
        .where(Certificate.examination_id.in_(ids))
        .order_by(Certificate.issued_at, Certificate.id)
    ):
        certificates.setdefault(certificate.examination_id, []).append(
            {
                "destination": certificate.destination,
                "certificate_id": certificate.id,
                "status": certificate.status,
                "valid_until": certificate.valid_until,
                "revocation_reason": revocation_code(certificate.status, certificate.status_reason),
                "revoked_at": certificate.revoked_at,
            }
        )
    referrals: dict[str, list[dict[str, object]]] = {}
    for referral in session.scalars(
        select(Referral).where(Referral.examination_id.in_(ids)).order_by(Referral.ordinal)
    ):
        referrals.setdefault(referral.examination_id, []).append(
            {"id": referral.id, "reason": referral.reason, "status": referral.status}
        )
    earlier = [
        EarlierExamination(
            id=row.id,
            examination_date=row.examination_date,
            clinic={
                "id": row.clinic_id,
                "name": clinics[row.clinic_id].name,
                "country": clinics[row.clinic_id].country,
            },
            purpose=row.purpose,
            destination=row.destination,
            status=row.status,
            linked=row.id == examination.previous_examination_id,
            certified_for=certificates.get(row.id, []),
            referrals=referrals.get(row.id, []),
        )
        for row in rows
    ]
    audit(
        session,
        actor=principal,
        action="examination.history-read",
        object_type="Examination",
        object_id=examination.id,
        purpose_of_use=purpose,
        detail={"earlier": len(earlier)},
        at=now,
    )
    return History(examination.id, purpose, earlier, now)


# -- has this person a valid certificate already? ---------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """A lookup's answer: nothing medical, only whether a valid certificate is held."""

    holds_valid_certificate: bool
    destination: str | None
    certificates: list[Certificate]
    checked_at: datetime


def lookup(
    uow: UnitOfWork,
    *,
    principal: Principal,
    document_country: str,
    document_number: str,
    birth_date: date,
    destination: str | None,
    now: datetime | None = None,
) -> Lookup:
    """Whether the person with this document and birth date holds a valid certificate.

    An unknown document, a birth date that does not match and a person without a valid
    certificate all answer the same, so a lookup cannot tell whether someone is registered.
    """
    cipher, index_key = uow.cipher, uow.index_key
    authorize(principal, "person.lookup")
    now = now or utcnow()
    if principal.role == "authority":
        if destination is not None and destination != principal.country:
            raise Forbidden(
                f"an authority of {principal.country} looks up certificates for "
                f"{principal.country} only"
            )
        destination = principal.country
    session = uow.session
    index = document_index(index_key, country=document_country, number=document_number)
    persons = session.scalars(
        select(Person)
        .join(PersonDocument, PersonDocument.person_id == Person.id)
        .where(PersonDocument.blind_index == index)
        .distinct()
        .order_by(Person.id)
    ).all()
    holders = [p.id for p in persons if open_identity(p, cipher).birth_date == birth_date]
    today = now.date()
    query = (
        select(Certificate)
        .where(
            Certificate.person_id.in_(holders),
            Certificate.status == "valid",
            Certificate.valid_from <= today,
            Certificate.valid_until >= today,
        )
        .order_by(Certificate.valid_until.desc(), Certificate.id)
    )
    if destination is not None:
        query = query.where(Certificate.destination == destination)
    found = list(session.scalars(query)) if holders else []
    audit(
        session,
        actor=principal,
        action="person.lookup",
        object_type="Person",
        object_id=holders[0] if holders else None,
        purpose_of_use="avoid-duplicate-examination",
        detail={"destination": destination, "certificates": [c.id for c in found]},
        at=now,
    )
    return Lookup(bool(found), destination, found, now)

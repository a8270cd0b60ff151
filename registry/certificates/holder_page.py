"""The holder's page: a migrant's own certificates and who checked them, by the secret link.

The secret is printed for the holder alone; the page is the only place that lists every
certificate of one person with its verification log, and every opening of it is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from registry.audit.service import record
from registry.certificates.cards import certificate_holder
from registry.certificates.holders import (
    HOLDER,
    certificates_for_holder,
    holder_secret,
    normalise_recovery_code,
    open_holder,
    recovery_code,
)
from registry.certificates.ids import InvalidCertificateId, normalise_certificate_id
from registry.certificates.models import Certificate
from registry.crypto.digests import equal
from registry.db import UnitOfWork, utcnow
from registry.errors import NotFound
from registry.transparency.reasons import revocation_code
from registry.transparency.service import card_leaf
from registry.verification.models import VerificationEvent

LOG_PAGE_SIZE = 10


@dataclass(frozen=True)
class HeldCertificate:
    """One certificate on the holder's page."""

    id: str
    status: str
    destination: str
    purpose: str
    clinic_name: str
    valid_from: date
    valid_until: date
    issued_at: datetime
    # when no longer valid: one of reasons.REVOCATION_CODES (never the clinical detail), and when
    revocation_reason: str | None = None
    revoked_at: datetime | None = None
    # its card's leaf in the transparency log: leaf_hash, and leaf_index once sequenced
    log_leaf: dict[str, Any] | None = None

    def current(self, today: date) -> bool:
        """Whether the certificate can be shown to an employer today."""
        return self.status == "valid" and self.valid_from <= today <= self.valid_until


@dataclass(frozen=True)
class LoggedVerification:
    """One check of one of the holder's certificates."""

    certificate_id: str
    verified_at: datetime
    verifier_name: str | None
    verifier_role: str | None
    result: str


@dataclass(frozen=True)
class HolderPage:
    """What a holder link shows: the holder's certificates and who checked them when."""

    name: str
    birth_date: date
    language: str
    certificates: list[HeldCertificate]
    verifications: list[LoggedVerification]
    log_page: int = 1  # which page of the log, newest first
    log_pages: int = 1
    log_total: int = 0


def holder_page(
    uow: UnitOfWork,
    *,
    secret: str,
    log_page: int = 1,
    page_size: int = LOG_PAGE_SIZE,
    now: datetime | None = None,
) -> HolderPage:
    """The holder's certificates and one page of their verification log (newest first); the
    read is audited (the caller commits the unit of work)."""
    now = now or utcnow()
    session = uow.session
    certificates = certificates_for_holder(session, secret)
    if not certificates:
        raise NotFound("no certificates for this link")
    holder = certificate_holder(certificates[-1], cipher=uow.cipher)
    held = [
        HeldCertificate(
            id=c.id,
            status=c.status,
            destination=c.destination,
            purpose=c.purpose,
            clinic_name=c.clinic.name,
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            issued_at=c.issued_at,
            revocation_reason=revocation_code(c.status, c.status_reason),
            revoked_at=c.revoked_at,
            log_leaf=card_leaf(session, c.id),
        )
        for c in reversed(certificates)
    ]
    ids = [c.id for c in certificates]
    total = (
        session.scalar(
            select(func.count())
            .select_from(VerificationEvent)
            .where(VerificationEvent.certificate_id.in_(ids))
        )
        or 0
    )
    pages = max(1, -(-total // page_size))
    log_page = min(max(1, log_page), pages)
    events = session.scalars(
        select(VerificationEvent)
        .where(VerificationEvent.certificate_id.in_(ids))
        .order_by(VerificationEvent.verified_at.desc(), VerificationEvent.id.desc())
        .offset((log_page - 1) * page_size)
        .limit(page_size)
    ).all()
    logged = [
        LoggedVerification(
            certificate_id=e.certificate_id,
            verified_at=e.verified_at,
            verifier_name=e.verifier_name,
            verifier_role=e.verifier_role,
            result=e.result,
        )
        for e in events
    ]
    record(
        session,
        actor=HOLDER,
        action="holder.read",
        object_type="Certificate",
        object_id=held[0].id,
        detail={"certificates": len(held)},
        at=now,
    )
    return HolderPage(
        name=" ".join([holder.family_name, *holder.given_names]),
        birth_date=holder.birth_date,
        language=holder.language,
        certificates=held,
        verifications=logged,
        log_page=log_page,
        log_pages=pages,
        log_total=total,
    )


RECOVERY_REFUSED = (
    "these details do not open a holder page: check the certificate number, the date of birth "
    "and the recovery code printed on your holder slip"
)


def recover_holder_link(
    uow: UnitOfWork,
    *,
    certificate_id: str,
    birth_date: str,
    code: str,
    now: datetime | None = None,
) -> str | None:
    """The holder secret for a certificate number, birth date and slip recovery code.

    Every wrong input (a malformed number, an unknown one, another birth date, a wrong code)
    answers the same None, so an attempt learns nothing about which part was wrong. Each
    attempt, refused ones too, is audited; the caller commits and rate-limits.
    """
    now = now or utcnow()
    session = uow.session
    found: Certificate | None = None
    try:
        normalised = normalise_certificate_id(certificate_id)
        born = date.fromisoformat((birth_date or "").strip())
    except (InvalidCertificateId, ValueError):
        normalised, born = None, None
    if normalised is not None:
        found = session.get(Certificate, normalised)
    typed = normalise_recovery_code(code)
    matches = False
    if found is not None and born is not None and typed:
        holder = open_holder(found.sealed_holder, uow.cipher, certificate_id=found.id)
        expected = recovery_code(uow.keystore, examination_id=found.examination_id)
        matches = holder.birth_date == born and equal(typed, expected)
    record(
        session,
        actor=HOLDER,
        action="holder.recover",
        object_type="Certificate" if matches and found is not None else None,
        object_id=found.id if matches and found is not None else None,
        outcome="success" if matches else "failure",
        at=now,
    )
    if not matches or found is None:
        return None
    return holder_secret(uow.keystore, examination_id=found.examination_id)

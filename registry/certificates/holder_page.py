"""The holder's page: a migrant's own certificates and who checked them, by the secret link.

The secret is printed for the holder alone; the page is the only place that lists every
certificate of one person with its verification log, and every opening of it is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from registry.audit.service import record
from registry.certificates.cards import certificate_holder
from registry.certificates.holders import HOLDER, certificates_for_holder, revocation_code
from registry.db import UnitOfWork, utcnow
from registry.errors import NotFound
from registry.verification.models import VerificationEvent


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
    # when no longer valid: one of holders.REVOCATION_CODES (never the clinical detail), and when
    revocation_reason: str | None = None
    revoked_at: datetime | None = None

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


def holder_page(
    uow: UnitOfWork, *, secret: str, log_limit: int = 200, now: datetime | None = None
) -> HolderPage:
    """The holder's certificates and their verification log; the read is audited (the caller
    commits the unit of work)."""
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
        )
        for c in reversed(certificates)
    ]
    events = session.scalars(
        select(VerificationEvent)
        .where(VerificationEvent.certificate_id.in_([c.id for c in certificates]))
        .order_by(VerificationEvent.verified_at.desc(), VerificationEvent.id.desc())
        .limit(log_limit)
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
    )

"""Public leaves for what happens elsewhere, subscribed in registry/subscriptions.py.

Each entry names things by their public ids and codes only: never personal data, results or
free text a person wrote (a revocation's reason goes in as one of
the codes of registry/transparency/reasons.py).
"""

from __future__ import annotations

from typing import Any

from registry.db import UnitOfWork, utcnow
from registry.events import (
    CertificateIssued,
    CertificateRevoked,
    ClinicKeyChanged,
    ClinicStatusChanged,
    RegistryKeyChanged,
    SurveillanceReleased,
)
from registry.transparency import log
from registry.transparency.reasons import reason_code


def _append(uow: UnitOfWork, kind: str, fields: dict[str, Any], *, ref: str, at: Any) -> None:
    log.append(uow.session, [log.leaf(kind, fields, ref=ref)], at=at)


def certificate_fields(certificate: Any) -> dict[str, Any]:
    """What the log says of a certificate's card: never who holds it or what was found."""
    return {
        "certificate": certificate.id,
        "kid": certificate.kid,
        "rid": certificate.rid,
        "destination": certificate.destination,
        "purpose": certificate.purpose,
        "valid_from": certificate.valid_from.isoformat(),
        "valid_until": certificate.valid_until.isoformat(),
        "clinic": certificate.clinic_id,
        "country": certificate.clinic_id[:2],
        "ruleset_version": certificate.ruleset_version,
    }


def on_certificate_issued(uow: UnitOfWork, event: CertificateIssued) -> None:
    certificate = event.certificate
    fields = {**certificate_fields(certificate), "at": event.now.isoformat()}
    _append(uow, "certificate.issued", fields, ref=certificate.id, at=event.now)


def on_certificate_revoked(uow: UnitOfWork, event: CertificateRevoked) -> None:
    certificate = event.certificate
    kind = "certificate.superseded" if certificate.status == "superseded" else "certificate.revoked"
    fields = {
        "certificate": certificate.id,
        "reason": reason_code(event.reason, superseded=certificate.status == "superseded"),
        "clinic": certificate.clinic_id,
        "country": certificate.clinic_id[:2],
        "at": event.now.isoformat(),
    }
    _append(uow, kind, fields, ref=certificate.id, at=event.now)


def on_clinic_status_changed(uow: UnitOfWork, event: ClinicStatusChanged) -> None:
    clinic = event.clinic
    fields = {
        "clinic": clinic.id,
        "country": clinic.country,
        "status": event.status,
        "effective_at": event.effective_at.isoformat(),
    }
    _append(uow, "clinic.status", fields, ref=clinic.id, at=event.effective_at)


def on_clinic_key_changed(uow: UnitOfWork, event: ClinicKeyChanged) -> None:
    fields = {
        "clinic": event.clinic.id,
        "country": event.clinic.country,
        "kid": event.kid,
        "status": event.status,
        "effective_at": event.effective_at.isoformat(),
    }
    _append(uow, "clinic.key", fields, ref=event.kid, at=event.effective_at)


def on_registry_key_changed(uow: UnitOfWork, event: RegistryKeyChanged) -> None:
    fields = {
        "kid": event.kid,
        "purpose": event.purpose,
        "status": event.status,
        "since": event.since.isoformat(),
    }
    _append(uow, "registry.key", fields, ref=event.kid, at=event.since)


def on_surveillance_released(uow: UnitOfWork, event: SurveillanceReleased) -> None:
    fields = {
        "ministry": event.ministry,
        "data_version": event.data_version,
        "sha256": event.digest,
    }
    _append(uow, "surveillance.release", fields, ref=event.ministry, at=utcnow())

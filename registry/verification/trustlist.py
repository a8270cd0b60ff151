"""The trust list: everything an offline verifier needs, signed by the registry's document key.

It lists the trusted issuers with their keys (the registry's certificate keys, registered
external issuers), every clinic with its accreditation window, dated status history and keys,
and the current revocation lists with the time they were read. An offline verifier checks the
list's signature against the registry's document key and then needs no network at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from registry.accreditation.models import Clinic
from registry.certificates.models import Certificate, CertificateRevocation
from registry.certificates.revocation import crl, crl_versions
from registry.config import Settings
from registry.crypto import jws
from registry.crypto.canonical import canonical_json
from registry.crypto.keystore import KeyStore
from registry.db import UnitOfWork, utcnow
from registry.transparency.service import latest as latest_checkpoint
from registry.transparency.service import log_verifier_key
from registry.transparency.service import origin as log_origin
from registry.verification.issuers import list_issuers

TRUST_LIST_TYPE = "exam-registry-trust-list"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SignedTrustList:
    """The trust list document and the registry's compact JWS over its canonical JSON."""

    document: dict[str, Any]
    jws: str


def _instant(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _registry_entry(uow: UnitOfWork, keystore: KeyStore, settings: Settings) -> dict[str, Any]:
    versions = crl_versions(uow)
    keys = []
    for key in keystore.keys("certificate"):
        jwk: dict[str, Any] = key.public_jwk()
        if key.kid in versions:
            jwk["crlVersion"] = versions[key.kid]
        keys.append(jwk)
    return {
        "iss": settings.base_url,
        "kind": "registry",
        "status": "active",
        "name": None,
        "keys": keys,
    }


def _clinic_entry(clinic: Clinic) -> dict[str, Any]:
    return {
        "id": clinic.id,
        "name": clinic.name,
        "country": clinic.country,
        "status": clinic.status,
        "accredited_from": clinic.accredited_from.isoformat(),
        "accredited_until": clinic.accredited_until.isoformat()
        if clinic.accredited_until
        else None,
        "purposes": list(clinic.purposes),
        "history": [
            {
                "status": event.status,
                "effective_at": event.effective_at.isoformat(),
                "recorded_at": event.recorded_at.isoformat(),
            }
            for event in sorted(clinic.history, key=lambda e: (e.recorded_at, e.id))
        ],
        "keys": [
            {"kid": key.kid, "status": key.status, "custody": key.custody, "jwk": key.public_jwk}
            for key in clinic.keys
        ],
    }


def _registry_revocations(
    uow: UnitOfWork, keystore: KeyStore, settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    superseded: dict[str, set[str]] = {}
    rows = uow.session.execute(
        select(CertificateRevocation.kid, CertificateRevocation.rid)
        .join(Certificate, Certificate.id == CertificateRevocation.certificate_id)
        .where(Certificate.status == "superseded")
    )
    for kid, rid in rows:
        superseded.setdefault(kid, set()).add(rid)
    entries = []
    for kid in sorted(crl_versions(uow)):
        entries.append(
            {
                "iss": settings.base_url,
                "kid": kid,
                "as_of": now.isoformat(),
                "crl": crl(uow, kid=kid),
                # the registry tells apart cards replaced after an amendment
                "superseded": sorted(superseded.get(kid, ())),
            }
        )
    return entries


def build_trust_list(uow: UnitOfWork, *, now: datetime | None = None) -> dict[str, Any]:
    """The trust list document as of now."""
    now = now or utcnow()
    session, keystore, settings = uow.session, uow.keystore, uow.settings
    issuers = [_registry_entry(uow, keystore, settings)]
    revocations = _registry_revocations(uow, keystore, settings, now)
    for row in list_issuers(uow):
        issuers.append(
            {
                "iss": row.iss,
                "kind": "external",
                "status": row.status,
                "name": row.name,
                "keys": list(row.jwks["keys"]),
            }
        )
        for kid, document in sorted(row.crl.items()):
            revocations.append(
                {
                    "iss": row.iss,
                    "kid": kid,
                    "as_of": _instant(row.crl_updated_at),
                    "crl": document,
                    "superseded": [],
                }
            )
    clinics = session.scalars(select(Clinic).order_by(Clinic.id)).all()
    checkpoint = latest_checkpoint(session)
    return {
        "type": TRUST_LIST_TYPE,
        "version": FORMAT_VERSION,
        "registry": settings.base_url,
        "issued_at": now.isoformat(),
        "revocations_as_of": now.isoformat(),
        "signing_keys": [key.purpose_jwk() for key in keystore.keys("document")],
        "issuers": issuers,
        "clinics": [_clinic_entry(clinic) for clinic in clinics],
        "revocations": revocations,
        # the log as of this list: a verifier holding it can check inclusion proofs offline
        "log": {
            "origin": log_origin(settings),
            "key": log_verifier_key(settings, keystore),
            "checkpoint": checkpoint.note if checkpoint is not None else None,
        },
    }


def sign_trust_list(document: dict[str, Any], keystore: KeyStore) -> str:
    """The registry's compact JWS (document key) over the document's RFC 8785 JSON."""
    key = keystore.active("document")
    return jws.sign(canonical_json(document), key.private_key, kid=key.kid, headers={"typ": "JOSE"})


def trust_list(uow: UnitOfWork, *, now: datetime | None = None) -> SignedTrustList:
    """The current trust list, signed."""
    document = build_trust_list(uow, now=now)
    return SignedTrustList(document=document, jws=sign_trust_list(document, uow.keystore))

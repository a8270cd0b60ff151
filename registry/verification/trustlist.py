"""The trust list: everything an offline verifier needs, signed by the registry's document key.

It lists the trusted issuers with their keys (the registry's certificate keys, registered
external issuers), every clinic with its accreditation window, dated status history and keys,
and the current revocation lists with the time they were read. An offline verifier checks the
list's signature against the registry's document key and then needs no network at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accreditation.models import Clinic, ClinicStatusEvent, KeyStatusEvent, SigningKey
from registry.certificates.models import Certificate, CertificateRevocation
from registry.certificates.revocation import crl, crl_versions
from registry.config import Settings
from registry.crypto import jws
from registry.crypto.canonical import canonical_json
from registry.crypto.keystore import KeyStore
from registry.db import UnitOfWork, utcnow
from registry.transparency.models import LogCheckpoint
from registry.transparency.service import latest as latest_checkpoint
from registry.transparency.service import log_verifier_key
from registry.transparency.service import origin as log_origin
from registry.verification.issuers import list_issuers
from registry.verification.models import ExternalIssuer

TRUST_LIST_TYPE = "exam-registry-trust-list"
FORMAT_VERSION = 1


def _latest(column: Any, order: Any) -> Any:
    return select(column).order_by(order.desc()).limit(1).scalar_subquery()


def _counted(model: Any, moment: Any) -> tuple[Any, Any]:
    return (
        select(func.count()).select_from(model).scalar_subquery(),
        select(func.max(moment)).scalar_subquery(),
    )


# What the list shows changes only by rows these aggregates see: revocations and status
# events are appended (a clinic's or key's status with an event row), issuers and registry
# keys carry the time of their last change. One statement, on indexes or small tables.
_DATA_VERSION = select(
    _latest(CertificateRevocation.id, CertificateRevocation.id),
    _latest(CertificateRevocation.revoked_at, CertificateRevocation.id),
    *_counted(Clinic, Clinic.created_at),
    *_counted(ClinicStatusEvent, ClinicStatusEvent.recorded_at),
    *_counted(SigningKey, SigningKey.created_at),
    *_counted(KeyStatusEvent, KeyStatusEvent.recorded_at),
    *_counted(ExternalIssuer, ExternalIssuer.updated_at),
    _latest(LogCheckpoint.size, LogCheckpoint.size),
    _latest(LogCheckpoint.created_at, LogCheckpoint.size),
)


@dataclass(frozen=True)
class DataVersion:
    """Which data a trust list shows (``key``) and when that data last changed."""

    key: tuple[Any, ...]
    changed_at: datetime | None

    @property
    def number(self) -> int:
        """The list's version: microseconds since the epoch of its data's last change."""
        if self.changed_at is None:
            return 0
        return int(self.changed_at.timestamp() * 1_000_000)


def data_version(session: Session, keystore: KeyStore) -> DataVersion:
    """The version of everything the trust list shows, in one cheap statement."""
    row = tuple(session.execute(_DATA_VERSION).one())
    registry_keys = keystore.version()
    moments = [v for v in row if isinstance(v, datetime)] + [
        changed for changed in (k[5] for k in registry_keys) if isinstance(changed, datetime)
    ]
    normalised = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments]
    return DataVersion(key=(row, registry_keys), changed_at=max(normalised, default=None))


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


def build_trust_list(
    uow: UnitOfWork, *, now: datetime | None = None, version: DataVersion | None = None
) -> dict[str, Any]:
    """The trust list document: of a data version (issued when that data last changed), or now.

    Built from a version, the document is the same for as long as its data is, in every
    worker: ``issued_at`` and ``revocations_as_of`` are the moment of the last change it shows
    (the lists were complete then and have not changed since) and ``list_version`` grows with
    every change.
    """
    if version is not None:
        now = version.changed_at or utcnow()
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
        "list_version": version.number if version is not None else int(now.timestamp() * 1e6),
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
    # deterministic ECDSA (RFC 6979): one document, one JWS, whichever worker signs it
    return jws.sign(
        canonical_json(document),
        key.private_key,
        kid=key.kid,
        headers={"typ": "JOSE"},
        deterministic=True,
    )


def trust_list(
    uow: UnitOfWork, *, now: datetime | None = None, version: DataVersion | None = None
) -> SignedTrustList:
    """The current trust list, signed."""
    document = build_trust_list(uow, now=now, version=version)
    return SignedTrustList(document=document, jws=sign_trust_list(document, uow.keystore))

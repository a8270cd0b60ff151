"""A certificate's cards: signing one under the active key, and reading what is sealed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from registry.certificates import holders, shc
from registry.certificates.holders import Holder
from registry.certificates.ids import InvalidCertificateId, normalise_certificate_id
from registry.certificates.models import Certificate, CertificateCard
from registry.config import Settings
from registry.crypto.encryption import DataCipher
from registry.crypto.keystore import KeyStore, RegistryKey
from registry.errors import NotFound
from registry.examinations.models import ExaminationVersion


def find_certificate(session: Session, certificate_id: str) -> Certificate:
    """A certificate by its id as typed (normalised); 404 when there is none."""
    try:
        canonical = normalise_certificate_id(certificate_id)
    except InvalidCertificateId as exc:
        raise NotFound(f"no certificate {certificate_id!r}: {exc}") from exc
    certificate = session.get(Certificate, canonical)
    if certificate is None:
        raise NotFound(f"no certificate {canonical}")
    return certificate


def sign_card(
    session: Session,
    certificate: Certificate,
    *,
    keystore: KeyStore,
    settings: Settings,
    cipher: DataCipher,
    now: datetime,
    holder: Holder | None = None,
    examination_sha256: str | None = None,
    key: RegistryKey | None = None,
) -> None:
    """Sign a new card for the certificate under ``key``, by default the active certificate key."""
    if holder is None:
        holder = holders.open_holder(
            certificate.sealed_holder, cipher, certificate_id=certificate.id
        )
    if examination_sha256 is None:
        version = session.get(ExaminationVersion, certificate.version_id)
        assert version is not None
        examination_sha256 = version.bundle_sha256
    if key is None:
        key = keystore.active("certificate")
    elif key.purpose != "certificate":
        raise ValueError(f"a card is signed with a certificate key, not a {key.purpose} key")
    rid = shc.compute_rid(keystore.secret("rid"), key.kid, certificate.id)
    payload = shc.build_payload(
        issuer=settings.base_url,
        certificate_id=certificate.id,
        family_name=holder.family_name,
        given_names=holder.given_names,
        birth_date=holder.birth_date,
        destination=certificate.destination,
        purpose=certificate.purpose,
        clinic_id=certificate.clinic_id,
        clinic_name=certificate.clinic.name,
        issued_at=now,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        rid=rid,
        examination_sha256=examination_sha256,
    )
    token = shc.encode_card(payload, key.private_key, key.kid)
    certificate.kid = key.kid
    certificate.rid = rid
    certificate.signed_at = now
    certificate.sealed_jws = holders.seal_card(token, cipher, certificate_id=certificate.id)
    certificate.cards.append(
        CertificateCard(kid=key.kid, rid=rid, signed_at=now, valid_until=certificate.valid_until)
    )


def certificate_holder(certificate: Certificate, *, cipher: DataCipher) -> Holder:
    """The holder a certificate names, decrypted."""
    return holders.open_holder(certificate.sealed_holder, cipher, certificate_id=certificate.id)


def certificate_card(certificate: Certificate, *, cipher: DataCipher) -> str:
    """The certificate's current SMART Health Card (compact JWS), decrypted."""
    return holders.open_card(certificate.sealed_jws, cipher, certificate_id=certificate.id)

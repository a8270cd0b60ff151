"""Revoke certificates: by their clinic or its accreditor, on amendment, withdrawal, stolen keys.

Each card of a revoked certificate joins its key's revocation list (SMART Health Cards, method
``rid``), whose ``ctr`` is the number of entries the list has ever had.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accreditation.models import SigningKey
from registry.audit.service import Actor, record
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates import shc
from registry.certificates.cards import find_certificate, sign_card
from registry.certificates.models import Certificate, CertificateCard, CertificateRevocation
from registry.certificates.rulesets import Ruleset
from registry.crypto.keystore import RegistryKey
from registry.crypto.rotation import rotate_key
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest, Conflict, NotFound
from registry.events import CertificateRevoked
from registry.examinations.models import ExaminationVersion
from registry.transparency import log
from registry.transparency.reasons import reason_code
from registry.transparency.subscribers import certificate_fields

KEY_COMPROMISE = "key-compromise"


@dataclass(frozen=True)
class Rotation:
    """A new certificate key, the one it replaced, and the certificates re-issued under it."""

    kid: str
    previous_kid: str | None
    status: str  # what the previous key became: retired | compromised
    reissued: list[Certificate]


def _revoked_cards(session: Session, certificate_ids: Iterable[str]) -> set[tuple[str, str]]:
    rows = session.execute(
        select(CertificateRevocation.kid, CertificateRevocation.rid).where(
            CertificateRevocation.certificate_id.in_(list(certificate_ids))
        )
    )
    return {(kid, rid) for kid, rid in rows}


def _list_revocation(
    session: Session,
    certificate: Certificate,
    cards: Iterable[CertificateCard],
    *,
    reason: str,
    actor: Actor,
    now: datetime,
) -> None:
    """Put cards of a certificate on their keys' revocation lists (each pair once)."""
    listed = _revoked_cards(session, [certificate.id])
    for card in cards:
        if (card.kid, card.rid) in listed:
            continue
        listed.add((card.kid, card.rid))
        fields = {
            "certificate": certificate.id,
            "kid": card.kid,
            "rid": card.rid,
            "reason": reason_code(reason, superseded=certificate.status == "superseded"),
            "at": now.isoformat(),
        }
        log.append(session, [log.leaf("card.revoked", fields, ref=certificate.id)], at=now)
        session.add(
            CertificateRevocation(
                certificate_id=certificate.id,
                kid=card.kid,
                rid=card.rid,
                revoked_at=now,
                reason=reason,
                actor=actor.actor_id,
            )
        )


def _end(
    uow: UnitOfWork,
    certificate: Certificate,
    *,
    status: str,
    reason: str,
    actor: Actor,
    now: datetime,
) -> None:
    session = uow.session
    certificate.status = status
    certificate.status_reason = reason
    certificate.revoked_at = now
    _list_revocation(session, certificate, certificate.cards, reason=reason, actor=actor, now=now)
    session.flush()
    record(
        session,
        actor=actor,
        action=f"certificate.{'supersede' if status == 'superseded' else 'revoke'}",
        object_type="Certificate",
        object_id=certificate.id,
        detail={"status": status, "examination": certificate.examination_id},
        at=now,
    )
    uow.publish(CertificateRevoked(certificate, reason=reason, now=now))


def revoke(
    uow: UnitOfWork, *, principal: Principal, certificate_id: str, reason: str, now: datetime
) -> Certificate:
    """Revoke a certificate: its issuing clinic, the accreditor of that clinic's country, admin."""
    certificate = find_certificate(uow.session, certificate_id)
    authorize(
        principal,
        "certificate.revoke",
        clinic_id=certificate.clinic_id,
        countries=(certificate.clinic.country,),
    )
    if not reason or not reason.strip():
        raise BadRequest("a revocation needs a reason")
    if certificate.status != "valid":
        raise Conflict(f"certificate {certificate.id} is already {certificate.status}")
    _end(
        uow,
        certificate,
        status="revoked",
        reason=reason.strip(),
        actor=principal,
        now=now,
    )
    return certificate


def revoke_for_examination(
    uow: UnitOfWork, *, examination_id: str, reason: str, actor: Actor, now: datetime
) -> list[Certificate]:
    """End an examination's valid certificates: superseded after an amendment, else revoked."""
    # The version's status tells the two apart: "amended" when a newer version replaced it,
    # "entered-in-error" when the clinic withdrew it. Either way the cards are listed.
    session = uow.session
    rows = session.execute(
        select(Certificate, ExaminationVersion.status)
        .join(ExaminationVersion, ExaminationVersion.id == Certificate.version_id)
        .where(Certificate.examination_id == examination_id, Certificate.status == "valid")
        .order_by(Certificate.id)
    ).all()
    for certificate, version_status in rows:
        status = "superseded" if version_status == "amended" else "revoked"
        _end(uow, certificate, status=status, reason=reason, actor=actor, now=now)
    return [certificate for certificate, _status in rows]


def revoke_after_key_compromise(
    uow: UnitOfWork,
    *,
    kid: str,
    since: datetime,
    actor: Actor,
    now: datetime,
) -> list[Certificate]:
    """Revoke what a compromised clinic key vouched for at or after ``since``."""
    # Certificates of the versions it signed, or that were submitted, from ``since`` on are
    # revoked (a thief can backdate a signature, not a submission).
    session = uow.session
    if session.get(SigningKey, kid) is None:
        raise NotFound(f"no clinic key {kid!r}")
    versions = select(ExaminationVersion.id).where(
        ExaminationVersion.signing_kid == kid,
        (ExaminationVersion.signed_at >= since) | (ExaminationVersion.submitted_at >= since),
    )
    certificates = list(
        session.scalars(
            select(Certificate)
            .where(Certificate.version_id.in_(versions), Certificate.status == "valid")
            .order_by(Certificate.id)
        )
    )
    for certificate in certificates:
        _end(
            uow,
            certificate,
            status="revoked",
            reason=f"{KEY_COMPROMISE}: the examination's signing key was compromised",
            actor=actor,
            now=now,
        )
    return certificates


def reissue_after_registry_key_compromise(
    uow: UnitOfWork,
    *,
    kid: str,
    since: datetime,
    key: RegistryKey,
    actor: Actor,
    now: datetime,
) -> list[Certificate]:
    """Re-issue under ``key`` every valid certificate whose card a compromised key signed.

    The compromised key is no longer published, so none of its cards verifies any more: every
    valid certificate whose current card it signed gets a new card, whenever that was signed.
    Its cards signed from ``since`` on (possibly the thief's) are also listed as revoked.
    """
    session = uow.session
    cards = session.scalars(
        select(CertificateCard).where(CertificateCard.kid == kid).order_by(CertificateCard.id)
    ).all()
    by_certificate: dict[str, list[CertificateCard]] = {}
    for card in cards:
        by_certificate.setdefault(card.certificate_id, []).append(card)
    reissued: list[Certificate] = []
    for certificate in sorted({c.certificate for c in cards}, key=lambda c: c.id):
        if certificate.status != "valid":
            continue  # its cards were listed when it was revoked or superseded
        later = [c for c in by_certificate[certificate.id] if c.signed_at >= since]
        _list_revocation(session, certificate, later, reason=KEY_COMPROMISE, actor=actor, now=now)
        if certificate.kid != kid:
            continue  # its current card is already under another key
        sign_card(
            session,
            certificate,
            keystore=uow.keystore,
            settings=uow.settings,
            cipher=uow.cipher,
            now=now,
            key=key,
        )
        session.flush()
        fields = {**certificate_fields(certificate), "at": now.isoformat()}
        log.append(session, [log.leaf("certificate.reissued", fields, ref=certificate.id)], at=now)
        record(
            session,
            actor=actor,
            action="certificate.reissue",
            object_type="Certificate",
            object_id=certificate.id,
            detail={"reason": KEY_COMPROMISE, "compromised_kid": kid, "kid": certificate.kid},
            at=now,
        )
        reissued.append(certificate)
    return reissued


def rotate_certificate_key(
    uow: UnitOfWork,
    *,
    actor: Actor,
    compromised_since: datetime | None = None,
    now: datetime | None = None,
) -> Rotation:
    """Make a new certificate key active; when the old one was compromised, re-issue its cards."""
    now = now or utcnow()
    rotation = rotate_key(
        uow, purpose="certificate", actor=actor, compromised_since=compromised_since, now=now
    )
    reissued: list[Certificate] = []
    if compromised_since is not None:
        for kid in rotation.replaced:
            reissued += reissue_after_registry_key_compromise(
                uow, kid=kid, since=compromised_since, key=rotation.key, actor=actor, now=now
            )
    return Rotation(
        kid=rotation.key.kid,
        previous_kid=rotation.replaced[-1] if rotation.replaced else None,
        status=rotation.replaced_status,
        reissued=reissued,
    )


# -- revocation lists ------------------------------------------------------------------------
def crl(uow: UnitOfWork, *, kid: str) -> dict[str, object]:
    """The revocation list of a registry certificate key, empty (ctr 1) until a revocation.

    Published from the key's first day, so a verifier that finds ``crlVersion`` in the JWKS
    always finds the list, and an empty list says "nothing revoked" rather than a 404.
    """
    session, keystore = uow.session, uow.keystore
    if keystore.find(kid, purpose="certificate") is None:
        raise NotFound(f"no certificate key {kid!r}")
    rows = session.execute(
        select(CertificateRevocation.rid, CertificateRevocation.revoked_at).where(
            CertificateRevocation.kid == kid
        )
    ).all()
    # "rid.t" revokes cards whose nbf is before t; a card's nbf is its signing second, so the
    # second after the revocation covers every card signed up to it.
    entries = [(rid, int(revoked_at.timestamp()) + 1) for rid, revoked_at in rows]
    return shc.crl_document(kid, crl_version(len(rows)), entries)


def crl_version(entries: int) -> int:
    """A list's ``ctr``: 1 for the empty list, one more for each entry added since."""
    return entries + 1


def crl_versions(uow: UnitOfWork) -> dict[str, int]:
    """The ``ctr`` of every registry certificate key's list: the JWKS's ``crlVersion``."""
    keystore = uow.keystore
    rows = uow.session.execute(
        select(CertificateRevocation.kid, func.count()).group_by(CertificateRevocation.kid)
    )
    counts = {kid: int(count) for kid, count in rows}
    return {key.kid: crl_version(counts.get(key.kid, 0)) for key in keystore.keys("certificate")}


# -- rulesets that change --------------------------------------------------------------------
RULESET_CHANGED = "ruleset-changed"


def revoke_as_ruleset_changed(
    uow: UnitOfWork,
    certificate: Certificate,
    *,
    ruleset: Ruleset,
    failed: Iterable[str],
    actor: Actor,
    now: datetime,
) -> None:
    """Revoke a certificate a newer version of its destination's rules no longer accepts.

    The reason names the version and the reason codes it failed (the clinic reads them; the
    holder is shown only ``ruleset-changed`` and the date).
    """
    _end(
        uow,
        certificate,
        status="revoked",
        reason=(
            f"{RULESET_CHANGED}: {ruleset.destination} version {ruleset.version} "
            f"({', '.join(sorted(set(failed)))})"
        ),
        actor=actor,
        now=now,
    )

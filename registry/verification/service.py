"""Verify certificates online: the card judged against the database, logged for the holder, audited.

Reads happen in a read session and the log entry and audit event in one short transaction
afterwards, so a verification holds no write lock while it checks signatures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, lazyload

from registry.accreditation.models import Clinic, ClinicStatusEvent
from registry.audit.models import AuditEvent
from registry.audit.service import Actor, record, record_with
from registry.auth.principal import Principal
from registry.certificates import shc
from registry.certificates.holders import open_card, open_holder
from registry.certificates.ids import InvalidCertificateId, normalise_certificate_id
from registry.certificates.models import Certificate, CertificateRevocation
from registry.config import Settings
from registry.crypto import jws
from registry.crypto.canonical import canonical_json
from registry.crypto.encryption import DataCipher, DecryptionError
from registry.crypto.keys import PublicKey, b64url, b64url_decode
from registry.crypto.keystore import KeyStore
from registry.db import Database, lost_connection, utcnow
from registry.errors import BadRequest, NotFound
from registry.examinations.models import ExaminationVersion, Person
from registry.examinations.persons import open_identity, open_photo
from registry.jsonlimits import JSONHasNul, JSONTooDeep, loads_limited
from registry.operations.metrics import VERIFICATIONS
from registry.transparency.reasons import revocation_code
from registry.verification.clinics import detached_clinic, standing
from registry.verification.issuers import issuer_keys
from registry.verification.models import ExternalIssuer, VerificationEvent
from registry.verification.schemas import VerificationSchema
from registry.verification.verdict import (
    BIRTH_DATE,
    CARD_REPLACED,
    ISSUER_LISTED,
    ISSUER_REVOKED,
    MALFORMED,
    NOT_FOUND,
    NOT_ON_RECORD,
    REGISTRY_REVOKED,
    REPLACED,
    REQUEST,
    REVOKED,
    SUPERSEDED,
    UNREADABLE,
    VALID,
    ClinicFacts,
    HolderFacts,
    IssuerKeys,
    Presented,
    Revocation,
    Unreadable,
    Verification,
    check_card,
    destination_code,
    name_of,
    token_from,
)

__all__ = [
    "Photo",
    "photo",
    "presented_from_json",
    "verify",
]

PHOTO_LIFETIME = timedelta(minutes=10)
CHANNELS = ("api", "page", "cli")
_PHOTO_CONTEXT = b"verification-photo"
_NO_SUCH_CERTIFICATE = "no certificate with this number and date of birth"
_RECEIPT_SCHEMA = VerificationSchema(exclude=("receipt",))


# -- what was presented ----------------------------------------------------------------------
def presented_from_json(raw: bytes, *, max_depth: int = 64) -> Presented:
    """The verification request in a JSON body; raises Unreadable for anything else."""
    try:
        body = loads_limited(raw, max_depth=max_depth) if raw else None
    except JSONHasNul as exc:
        raise BadRequest(str(exc)) from None
    except (ValueError, UnicodeDecodeError, JSONTooDeep) as exc:
        raise Unreadable("the request body is not JSON") from exc
    if not isinstance(body, dict):
        raise Unreadable('send a JSON object: {"qr": …}, {"jws": …} or {"certificate_id", …}')
    return presented_from_fields(body)


def presented_from_fields(fields: dict[str, Any]) -> Presented:
    """The verification request in form or JSON fields; raises Unreadable when ambiguous."""
    names = ("qr", "jws", "certificate_id", "birth_date", "for_destination")
    values = {name: fields.get(name) for name in names}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise Unreadable(f"{name} must be text")
    try:
        values["for_destination"] = destination_code(values["for_destination"])
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    given = {name: value for name, value in values.items() if value not in (None, "")}
    forms = [name for name in ("qr", "jws", "certificate_id") if name in given]
    if len(forms) != 1:
        raise Unreadable("send exactly one of qr, jws, or certificate_id with birth_date")
    if forms == ["certificate_id"] and "birth_date" not in given:
        raise Unreadable("a certificate number is checked together with the birth date")
    return Presented(**given)


# -- what the database knows ---------------------------------------------------------------------
@dataclass(frozen=True)
class CertificateRecord:
    """What verification needs to know of one of our certificates, read in one query."""

    id: str
    status: str
    status_reason: str | None
    revoked_at: datetime | None
    examination_id: str
    person_id: str
    sealed_holder: bytes
    sealed_jws: bytes
    sealed_identity: bytes
    has_photo: bool
    examined_on: date
    clinic: Clinic  # detached, with its dated status history
    card: tuple[str | None, str | None]  # the (kid, rid) card_revoked answers for
    card_revoked: bool
    any_card_revoked: bool  # of any (kid, rid): the certificate was never re-issued if not


_RECORD = (
    select(
        Certificate.id,
        Certificate.status,
        Certificate.status_reason,
        Certificate.revoked_at,
        Certificate.examination_id,
        Certificate.person_id,
        Certificate.sealed_holder,
        Certificate.sealed_jws,
        Person.sealed_identity,
        Person.sealed_photo.is_not(None).label("has_photo"),
        ExaminationVersion.examination_date,
        Clinic.id.label("clinic_id"),
        Clinic.name.label("clinic_name"),
        Clinic.country,
        Clinic.status.label("clinic_status"),
        Clinic.accredited_from,
        Clinic.accredited_until,
        ClinicStatusEvent.id.label("event_id"),
        ClinicStatusEvent.status.label("event_status"),
        ClinicStatusEvent.effective_at,
        ClinicStatusEvent.recorded_at,
        # whether the presented card (kid, rid) was replaced: answered in the same query
        exists()
        .where(
            CertificateRevocation.certificate_id == Certificate.id,
            CertificateRevocation.kid == bindparam("kid"),
            CertificateRevocation.rid == bindparam("rid"),
        )
        .label("card_revoked"),
        # whether any card of it was replaced: if none, neither was the card of another kid/rid
        exists()
        .where(CertificateRevocation.certificate_id == Certificate.id)
        .label("any_card_revoked"),
    )
    .join(ExaminationVersion, ExaminationVersion.id == Certificate.version_id)
    .join(Person, Person.id == Certificate.person_id)
    .join(Clinic, Clinic.id == Certificate.clinic_id)
    .outerjoin(ClinicStatusEvent, ClinicStatusEvent.clinic_id == Clinic.id)
    .where(Certificate.id == bindparam("certificate_id"))
)
_CARD_REVOKED = (
    select(CertificateRevocation.id)
    .where(
        CertificateRevocation.certificate_id == bindparam("certificate_id"),
        CertificateRevocation.kid == bindparam("kid"),
        CertificateRevocation.rid == bindparam("rid"),
    )
    .limit(1)
)


class CertificateKeys(Mapping[str, PublicKey]):
    """The registry's certificate keys by kid, as the key store knows them now.

    Only certificate keys: a token or document key never verifies a card. An unknown kid (a
    card re-issued a moment ago by another worker) makes the key store read the database
    again at once.
    """

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore

    def __getitem__(self, kid: str) -> PublicKey:
        key = self.keystore.find(kid, purpose="certificate")
        if key is None:
            raise KeyError(kid)
        return key.public_key

    def __iter__(self) -> Iterator[str]:
        return iter([key.kid for key in self.keystore.keys("certificate")])

    def __len__(self) -> int:
        return len(self.keystore.keys("certificate"))


class WithdrawnKeys(Mapping[str, str]):
    """The registry's compromised certificate keys by kid: why none of their cards verifies."""

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore

    def __getitem__(self, kid: str) -> str:
        key = self.keystore.compromised(kid)
        if key is None or key.purpose != "certificate":
            raise KeyError(kid)
        return (
            f"key {kid} of the registry was compromised and no longer vouches for any card; "
            "every valid certificate it signed was re-issued under a new key: ask the holder "
            "for the current card"
        )

    def __iter__(self) -> Iterator[str]:
        compromised = [k for k in self.keystore.every_key() if k.status == "compromised"]
        return iter([k.kid for k in compromised if k.purpose == "certificate"])

    def __len__(self) -> int:
        return len(list(iter(self)))


class DatabaseTrust:
    """The Trust of the online registry: its own keys and records, registered issuers.

    Verification is the registry's busiest path, so it reads with plain queries rather than
    loading ORM objects and their relationships: for a presented card one query answers the
    certificate, its examination date, person, clinic with history and whether that card was
    replaced.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        keystore: KeyStore,
        settings: Settings,
        cipher: DataCipher,
        now: datetime,
    ) -> None:
        self.connection = connection
        self.keystore = keystore
        self.settings = settings
        self.cipher = cipher
        self.now = now
        self._certificates: dict[str, CertificateRecord | None] = {}
        self._external: dict[str, ExternalIssuer | None] = {}

    def certificate(
        self, certificate_id: str, *, kid: str | None = None, rid: str | None = None
    ) -> CertificateRecord | None:
        """One of our certificates, read once; given a card's kid and rid, if that was replaced."""
        if certificate_id not in self._certificates:
            rows = self.connection.execute(
                _RECORD, {"certificate_id": certificate_id, "kid": kid, "rid": rid}
            )
            self._certificates[certificate_id] = _record_of(rows.all(), card=(kid, rid))
        return self._certificates[certificate_id]

    def _external_issuer(self, iss: str) -> ExternalIssuer | None:
        if iss not in self._external:
            # the only ORM object here; a session on the same connection loads it
            with Session(bind=self.connection) as session:
                self._external[iss] = session.get(ExternalIssuer, iss)
        return self._external[iss]

    def issuer(self, iss: str) -> IssuerKeys | None:
        """The registry itself (its certificate keys), or a registered external issuer."""
        if iss == self.settings.base_url:
            return IssuerKeys(
                iss=iss,
                kind="registry",
                status="active",
                keys=CertificateKeys(self.keystore),
                withdrawn=WithdrawnKeys(self.keystore),
            )
        row = self._external_issuer(iss)
        if row is None:
            return None
        return IssuerKeys(
            iss=iss, kind="external", status=row.status, keys=issuer_keys(row), name=row.name
        )

    def revocation(
        self,
        *,
        issuer: IssuerKeys,
        kid: str,
        rid: str | None,
        nbf: float,
        claims: shc.CertificateClaims | None,
    ) -> Revocation:
        """The registry's own records for its cards; the registered CRL for other issuers."""
        if issuer.kind == "external":
            row = self._external_issuer(issuer.iss)
            assert row is not None
            crl = row.crl.get(kid)
            revoked = crl is not None and rid is not None and shc.rid_revoked(crl, rid=rid, nbf=nbf)
            return Revocation(
                REVOKED if revoked else None,
                row.crl_updated_at,
                ISSUER_REVOKED if revoked else None,
                ISSUER_LISTED if revoked else None,
            )
        if claims is None:
            return Revocation(None, self.now)
        certificate = self.certificate(claims.certificate_id, kid=kid, rid=rid)
        if certificate is None:
            return Revocation(
                "unknown",
                self.now,
                f"no certificate {claims.certificate_id} is on record",
                NOT_ON_RECORD,
            )
        code = revocation_code(certificate.status, certificate.status_reason)
        if certificate.status == "superseded":
            return Revocation(SUPERSEDED, self.now, REPLACED, code, certificate.revoked_at)
        if certificate.status == "revoked":
            return Revocation(REVOKED, self.now, REGISTRY_REVOKED, code, certificate.revoked_at)
        if certificate.card == (kid, rid):
            card_revoked = certificate.card_revoked
        elif not certificate.any_card_revoked:
            card_revoked = False  # a certificate number: its current card, never replaced
        else:
            card_revoked = (
                self.connection.execute(
                    _CARD_REVOKED, {"certificate_id": certificate.id, "kid": kid, "rid": rid}
                ).first()
                is not None
            )
        if card_revoked:
            return Revocation(
                REVOKED,
                self.now,
                "this card was replaced by a newer card of the same certificate; ask the "
                "holder for the current one",
                CARD_REPLACED,
            )
        return Revocation(None, self.now)

    def clinic(self, *, claims: shc.CertificateClaims, now: datetime) -> ClinicFacts | None:
        """The certificate's clinic and its accreditation on the examination date and now."""
        certificate = self.certificate(claims.certificate_id)
        if certificate is None:
            return None
        clinic = certificate.clinic
        return ClinicFacts(
            id=clinic.id,
            name=clinic.name,
            country=clinic.country,
            accreditation=standing(clinic, examined_on=certificate.examined_on, now=now),
        )

    def holder(self, *, claims: shc.CertificateClaims, identity: bool) -> HolderFacts:
        """The holder's full name (a card may shorten it), and for a valid card hint and photo."""
        certificate = self.certificate(claims.certificate_id)
        if certificate is None:
            return HolderFacts(name=name_of(claims), birth_date=claims.birth_date)
        holder = open_holder(certificate.sealed_holder, self.cipher, certificate_id=certificate.id)
        name = " ".join([holder.family_name, *holder.given_names])
        if not identity:
            return HolderFacts(name=name, birth_date=holder.birth_date.isoformat())
        person = Person(id=certificate.person_id, sealed_identity=certificate.sealed_identity)
        photo_url = None
        if certificate.has_photo:
            token = photo_token(
                self.cipher,
                person_id=certificate.person_id,
                certificate_id=certificate.id,
                expires=self.now + PHOTO_LIFETIME,
            )
            photo_url = f"{self.settings.base_url}/verify/photo/{token}"
        return HolderFacts(
            name=name,
            birth_date=holder.birth_date.isoformat(),
            document_hint=open_identity(person, self.cipher).document_hint,
            photo_url=photo_url,
        )


def _record_of(
    rows: Sequence[Row[Any]] | Sequence[Any], *, card: tuple[str | None, str | None]
) -> CertificateRecord | None:
    if not rows:
        return None
    first = rows[0]
    history = tuple(
        (row.event_id, row.event_status, row.effective_at, row.recorded_at)
        for row in rows
        if row.event_id is not None
    )
    key = (
        first.clinic_id,
        first.clinic_name,
        first.country,
        first.clinic_status,
        first.accredited_from,
        first.accredited_until,
        history,
    )
    return CertificateRecord(
        id=first.id,
        status=first.status,
        status_reason=first.status_reason,
        revoked_at=first.revoked_at,
        examination_id=first.examination_id,
        person_id=first.person_id,
        sealed_holder=first.sealed_holder,
        sealed_jws=first.sealed_jws,
        sealed_identity=first.sealed_identity,
        has_photo=bool(first.has_photo),
        examined_on=first.examination_date,
        clinic=_clinic_record(key),
        card=card,
        card_revoked=bool(first.card_revoked),
        any_card_revoked=bool(first.any_card_revoked),
    )


@functools.lru_cache(maxsize=1024)
def _clinic_record(key: tuple[Any, ...]) -> Clinic:
    """A detached clinic for exactly these rows: built once per version of its history."""
    clinic_id, name, country, status, accredited_from, accredited_until, history = key
    return detached_clinic(
        clinic_id=clinic_id,
        name=name,
        country=country,
        status=status,
        accredited_from=accredited_from,
        accredited_until=accredited_until,
        history=history,
    )


# -- verifying -------------------------------------------------------------------------------
def _by_certificate_id(trust: DatabaseTrust, presented: Presented, now: datetime) -> Verification:
    assert presented.certificate_id is not None
    wanted = presented.for_destination
    try:
        certificate_id = normalise_certificate_id(presented.certificate_id)
    except InvalidCertificateId as exc:
        return Verification(
            MALFORMED, now, reason=str(exc), reason_code=exc.code, for_destination=wanted
        )
    try:
        birth_date = date.fromisoformat((presented.birth_date or "").strip())
    except ValueError:
        return Verification(
            MALFORMED,
            now,
            reason="birth_date must be a date, YYYY-MM-DD",
            reason_code=BIRTH_DATE,
            for_destination=wanted,
        )
    # The same answer for an unknown number and a wrong birth date: a guess learns nothing.
    unknown = Verification(
        NOT_FOUND,
        now,
        reason=_NO_SUCH_CERTIFICATE,
        reason_code=NOT_ON_RECORD,
        for_destination=wanted,
    )
    certificate = trust.certificate(certificate_id)
    if certificate is None:
        return unknown
    holder = open_holder(certificate.sealed_holder, trust.cipher, certificate_id=certificate.id)
    if holder.birth_date != birth_date:
        return unknown
    token = open_card(certificate.sealed_jws, trust.cipher, certificate_id=certificate.id)
    return check_card(token, trust=trust, now=now, for_destination=wanted)


def _judge(trust: DatabaseTrust, presented: Presented, now: datetime) -> Verification:
    if presented.certificate_id is not None:
        return _by_certificate_id(trust, presented, now)
    try:
        token = token_from(presented)
    except Unreadable as exc:
        return Verification(
            MALFORMED,
            now,
            reason=str(exc),
            reason_code=UNREADABLE,
            for_destination=presented.for_destination,
        )
    return check_card(token, trust=trust, now=now, for_destination=presented.for_destination)


def sign_receipt(verification: Verification, keystore: KeyStore) -> str:
    """Sign the published answer (receipt aside) with the document key; keep both on it."""
    key = keystore.active("document")
    document: dict[str, Any] = _RECEIPT_SCHEMA.dump(verification)
    verification.receipt = jws.sign(canonical_json(document), key.private_key, kid=key.kid)
    document["receipt"] = verification.receipt
    verification.published = document
    return verification.receipt


def verify(
    db: Database,
    *,
    presented: Presented | str,
    principal: Principal | Actor,
    channel: str,
    now: datetime | None = None,
) -> Verification:
    """Judge what was presented (or, given a text, answer it ``malformed``); log and audit it.

    Anyone may verify. An authenticated caller's registered name goes into the holder's log;
    an authority of the certificate's destination also gets the link to its authority view.
    On PostgreSQL one connection whose statements commit by themselves serves it all: the
    read (no BEGIN, no ROLLBACK), then the audit event, its leaf and the holder's log in one
    atomic statement; a pooled connection found dead at the read is replaced once. On SQLite
    the judging reads in a read-only transaction and the log is written in a short one.
    Both use the app's context that the database carries.
    """
    context = db.context
    if context is None:
        raise RuntimeError("verification needs the app's context (keys, settings, cipher)")
    keystore, settings = context.keystore, context.settings
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    now = now or utcnow()
    form = presented.form if isinstance(presented, Presented) else "unreadable"
    if db.dialect != "postgresql":
        # SQLite: judge in a read transaction (no write lock), then write in a short one
        with db.read_session() as session:
            verification = _judged(session.connection(), presented, context, now)
        _link_authority_view(verification, principal, settings)
        with db.unit_of_work() as uow:
            _answer(uow.session, verification, principal, channel, form, keystore)
            uow.commit()
    else:
        # PostgreSQL: one connection whose statements commit by themselves: the read, then
        # the audit event, its leaf and the holder's log in one atomic statement
        for attempt in (1, 2):
            with db.autocommit_connection() as connection:
                try:
                    verification = _judged(connection, presented, context, now)
                except DBAPIError as exc:
                    # a pooled connection that died since its last use: once more, afresh
                    if attempt == 2 or not lost_connection(exc):
                        raise
                    continue
                _link_authority_view(verification, principal, settings)
                _answer(connection, verification, principal, channel, form, keystore)
                break
    VERIFICATIONS.labels(verification.result).inc()
    return verification


def _judged(
    connection: Connection, presented: Presented | str, context: Any, now: datetime
) -> Verification:
    if isinstance(presented, str):
        return Verification(MALFORMED, now, reason=presented, reason_code=REQUEST)
    trust = DatabaseTrust(
        connection,
        keystore=context.keystore,
        settings=context.settings,
        cipher=context.cipher,
        now=now,
    )
    verification = _judge(trust, presented, now)
    if verification.certificate_id is not None:
        certificate = trust.certificate(verification.certificate_id)
        verification.examination_id = certificate.examination_id if certificate else None
    return verification


def _answer(
    session: Session | Connection,
    verification: Verification,
    principal: Principal | Actor,
    channel: str,
    form: str,
    keystore: KeyStore,
) -> None:
    event = _record(session, verification, principal=principal, channel=channel, form=form)
    # the receipt names the verification's own leaf, whose inclusion anyone can check
    verification.log_leaf = event.leaf_hash.hex()
    sign_receipt(verification, keystore)


def _link_authority_view(
    verification: Verification, principal: Principal | Actor, settings: Settings
) -> None:
    certificate = verification.certificate
    if (
        isinstance(principal, Principal)
        and principal.role == "authority"
        and certificate is not None
        and verification.examination_id is not None
        and principal.country == certificate.destination
    ):
        verification.authority_view = (
            f"{settings.base_url}/api/v1/authority/examinations/{verification.examination_id}"
        )


def _record(
    session: Session | Connection,
    verification: Verification,
    *,
    principal: Principal | Actor,
    channel: str,
    form: str,
) -> AuditEvent:
    detail: dict[str, Any] = {"result": verification.result, "form": form, "channel": channel}
    if verification.card_type:
        detail["card_type"] = verification.card_type
    if verification.issuer:
        detail["issuer"] = verification.issuer[:200]
    holder_log: tuple[Table, dict[str, Any]] | None = None
    if verification.certificate_id is not None:
        authenticated = not isinstance(principal, Principal) or principal.authenticated
        holder_log = (
            _VERIFICATION_EVENTS,
            {
                "certificate_id": verification.certificate_id,
                "verified_at": verification.checked_at,
                "result": verification.result,
                "verifier_name": getattr(principal, "name", None) if authenticated else None,
                "verifier_role": principal.role if authenticated else None,
                "channel": channel,
            },
        )
    # the audit event, its public leaf and the holder's log entry: all or nothing
    return record_with(
        session,
        actor=principal,
        action="certificate.verify",
        object_type="Certificate" if verification.certificate_id else None,
        object_id=verification.certificate_id,
        outcome="success" if verification.result == VALID else "failure",
        detail=detail,
        at=verification.checked_at,
        also=holder_log,
    )


_VERIFICATION_EVENTS: Table = VerificationEvent.__table__  # type: ignore[assignment]


# -- the holder's photo at a short-lived, unguessable address -----------------------------------
@dataclass(frozen=True)
class Photo:
    """A holder's photo to show beside a verification answer."""

    content: bytes
    media_type: str


def photo_token(
    cipher: DataCipher, *, person_id: str, certificate_id: str, expires: datetime
) -> str:
    """An opaque token (AES-GCM sealed) naming whose photo may be shown, and until when."""
    plain = json.dumps(
        {"p": person_id, "c": certificate_id, "e": int(expires.timestamp())},
        separators=(",", ":"),
    ).encode()
    return b64url(cipher.encrypt(plain, context=_PHOTO_CONTEXT))


def photo(
    db: Database,
    *,
    token: str,
    cipher: DataCipher,
    principal: Principal | Actor,
    now: datetime | None = None,
) -> Photo:
    """The photo a verification answer pointed at, while its address lasts; the read is audited."""
    now = now or utcnow()
    gone = NotFound("this photo address has expired; verify the certificate again")
    try:
        sealed = json.loads(cipher.decrypt(b64url_decode(token), context=_PHOTO_CONTEXT))
        person_id, certificate_id, expires = str(sealed["p"]), str(sealed["c"]), int(sealed["e"])
    except (ValueError, KeyError, TypeError, DecryptionError) as exc:
        raise gone from exc
    if now.timestamp() > expires:
        raise gone
    with db.read_session() as session:
        person = session.get(Person, person_id, options=[lazyload(Person.documents)])
        content = open_photo(person, cipher) if person is not None else None
        media_type = person.photo_content_type if person is not None else None
    if content is None or media_type is None:
        raise gone
    with db.unit_of_work() as uow:
        record(
            uow.session,
            actor=principal,
            action="certificate.verify.photo",
            object_type="Certificate",
            object_id=certificate_id,
            at=now,
        )
        uow.commit()
    return Photo(content=content, media_type=media_type)

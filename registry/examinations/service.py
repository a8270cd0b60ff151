"""Submit, amend, withdraw and read examinations: one transaction each, audited."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, joinedload

from registry.accreditation.models import Clinic, SigningKey
from registry.accreditation.status import (
    accreditation_at,
    accredited_on,
    compromised_since,
    custodial_private_key,
    key_status_at,
)
from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates.assessment import Assessment
from registry.config import Settings
from registry.crypto.canonical import sha256_hex
from registry.crypto.encryption import DataCipher
from registry.crypto.jws import JWSError, read_header
from registry.crypto.keys import load_public_jwk
from registry.db import UnitOfWork, as_stored, dialect_insert, row_of, utcnow
from registry.errors import Conflict, InvalidResource, Issue, NotFound
from registry.events import SubmissionReplayed, VersionRetired, VersionStored
from registry.examinations import linkage, persons, register, signing
from registry.examinations.models import Examination, ExaminationVersion, Person, TestResult
from registry.examinations.sealed import open_bundle, seal_bundle, seal_outcome
from registry.fhir import ExaminationRecord, parse_examination_bundle
from registry.transparency.reasons import ENTERED_IN_ERROR

__all__ = ["Submission", "amend", "read_bundle", "submit", "withdraw"]

CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class Submission:
    """What a submission, amendment or withdrawal did."""

    examination: Examination
    version: ExaminationVersion
    created: bool  # False when an identical submission was already stored
    assessments: list[Assessment] = field(default_factory=list)


def _refuse(location: str, text: str, code: str = "business-rule") -> InvalidResource:
    return InvalidResource(issues=[Issue(code=code, diagnostics=text, location=location)])


# -- checks ----------------------------------------------------------------------------------
def _check_clinic(clinic: Clinic, record: ExaminationRecord, now: datetime) -> None:
    issues = []
    status = accreditation_at(clinic, now)
    if status != "active":
        issues.append(Issue("business-rule", f"clinic {clinic.id} is {status}", "Bundle"))
    if not accredited_on(clinic, record.examination_date):
        issues.append(
            Issue(
                "business-rule",
                f"clinic {clinic.id} was not accredited on the examination date "
                f"{record.examination_date.isoformat()}",
                "Bundle.entry.resource.ofType(Encounter).period.start",
            )
        )
    if record.purpose not in clinic.purposes:
        issues.append(
            Issue(
                "business-rule",
                f"clinic {clinic.id} is not accredited for {record.purpose} examinations "
                f"(permitted: {', '.join(clinic.purposes)})",
                "Bundle.entry[0].resource.category",
            )
        )
    if issues:
        raise InvalidResource(issues=issues)


def _clinic_key_for(clinic: Clinic, kid: str) -> SigningKey:
    key = next((k for k in clinic.keys if k.kid == kid), None)
    if key is None:
        raise _refuse(
            "Bundle.signature.data",
            f"signed with key {kid!r}, which is not registered to clinic {clinic.id}",
            "security",
        )
    return key


def _verify_signature(
    clinic: Clinic, record: ExaminationRecord, content: bytes, now: datetime
) -> tuple[str, SigningKey, datetime]:
    """Check a clinic-held signature; returns the detached JWS, its key and its time."""
    assert record.signature is not None
    signature = record.signature
    try:
        token = signing.detached_jws(signature.data)
        kid = str(read_header(token).get("kid"))
    except JWSError as exc:
        raise _refuse("Bundle.signature.data", str(exc), "security") from exc
    key = _clinic_key_for(clinic, kid)
    when = signature.when
    if when > now + CLOCK_SKEW:
        raise _refuse("Bundle.signature.when", "signature time is in the future", "invalid")
    # clinic clocks and second-precision timestamps: a signature made just as the key was
    # registered counts from the registration
    moment = max(when, key.created_at) if when >= key.created_at - CLOCK_SKEW else when
    status = key_status_at(key, moment)
    if status != "active":
        raise _refuse(
            "Bundle.signature.when",
            f"key {kid} was {status} at the signature time {when.isoformat()}",
            "security",
        )
    compromised = compromised_since(key)
    if compromised is not None:
        # a stolen key can backdate `when`; nothing new signed by it is accepted any more
        raise _refuse(
            "Bundle.signature.data",
            f"key {kid} is marked compromised since {compromised.isoformat()}; "
            "re-sign with a new key",
            "security",
        )
    try:
        signing.verify_bundle(content, token, load_public_jwk(key.public_jwk))
    except JWSError as exc:
        raise _refuse(
            "Bundle.signature.data",
            "signature does not verify: the bundle was changed after signing or was "
            f"signed by another key ({exc})",
            "security",
        ) from exc
    return token, key, when


def _custodial_sign(
    clinic: Clinic, record: ExaminationRecord, content: bytes, cipher: DataCipher, now: datetime
) -> tuple[dict[str, Any], str, SigningKey]:
    """Sign an unsigned bundle with the clinic's custodial key."""
    key = next(
        (k for k in reversed(clinic.keys) if k.custody == "custodial" and k.status == "active"),
        None,
    )
    if key is None:
        raise _refuse(
            "Bundle.signature",
            f"the bundle is unsigned and clinic {clinic.id} has no active custodial "
            "key; sign it with `registry sign` and the clinic's key",
            "required",
        )
    signed = signing.sign_bundle(
        record.bundle, custodial_private_key(key, cipher), kid=key.kid, when=now, content=content
    )
    token = signing.detached_jws(signed["signature"]["data"])
    return signed, token, key


# -- writing ---------------------------------------------------------------------------------
def _parse(raw: bytes, settings: Settings) -> ExaminationRecord:
    return parse_examination_bundle(
        raw, max_depth=settings.max_json_depth, max_entries=settings.max_bundle_entries
    )


def _new_version(
    uow: UnitOfWork,
    *,
    examination: Examination,
    number: int,
    record: ExaminationRecord,
    raw: bytes,
    clinic: Clinic,
    now: datetime,
) -> ExaminationVersion:
    """Verify or apply the signature, then store an immutable version with its results."""
    cipher = uow.cipher
    content = signing.signed_content(record.bundle)
    if record.signature is not None:
        token, key, signed_at = _verify_signature(clinic, record, content, now)
        stored, custodial = raw, False
    else:
        signed, token, key = _custodial_sign(clinic, record, content, cipher, now)
        stored = json.dumps(signed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        signed_at, custodial = now, True
    version = ExaminationVersion(
        examination_id=examination.id,
        version=number,
        status="final",
        sealed_bundle=seal_bundle(cipher, examination.id, number, stored),
        bundle_sha256=sha256_hex(content),
        jws=token,
        signing_kid=key.kid,
        custodial=custodial,
        signed_at=signed_at,
        submitted_at=now,
        purpose=record.purpose,
        destination=record.destination,
        examination_date=record.examination_date,
        practitioner_licence=record.practitioner_licence,
    )
    results = [
        {
            "concept": result.concept,
            "loinc": result.loinc,
            "sealed_outcome": seal_outcome(
                cipher, examination.id, number, result.concept, result.outcome
            ),
            "effective": result.effective,
        }
        for result in record.results
    ]
    _insert_version(uow.session, version, results)
    examination.versions.append(version)
    return version


_VERSIONS = cast(Table, ExaminationVersion.__table__)
_RESULTS = cast(Table, TestResult.__table__)
_INSERT_VERSION = insert(_VERSIONS).returning(_VERSIONS.c.id)


def _insert_version(
    session: Session, version: ExaminationVersion, results: list[dict[str, Any]]
) -> None:
    """The version's row and its results' rows, written at once (no unit-of-work flush); the
    version joins the session as stored (its results load when read)."""
    connection = session.connection()
    version.id = connection.execute(_INSERT_VERSION, row_of(version, without_id=True)).scalar_one()
    if results:
        connection.execute(insert(_RESULTS), [{**r, "version_id": version.id} for r in results])
    as_stored(session, version)


def _clinic_of(uow: UnitOfWork, principal: Principal, record: ExaminationRecord) -> Clinic:
    # the clinic with its status history and keys in one statement (not one per collection)
    clinic = (
        uow.session.scalars(
            select(Clinic)
            .options(joinedload(Clinic.history), joinedload(Clinic.keys))
            .where(Clinic.id == principal.clinic_id)
        )
        .unique()
        .one_or_none()
    )
    if clinic is None:
        raise NotFound(f"no clinic {principal.clinic_id!r}")
    if record.clinic_id != clinic.id:
        raise _refuse(
            "Bundle.entry.resource.ofType(Organization).identifier",
            f"the bundle's clinic {record.clinic_id} is not the submitting clinic {clinic.id}",
        )
    return clinic


def _existing(uow: UnitOfWork, clinic_id: str, record: ExaminationRecord) -> Examination | None:
    return uow.session.scalars(
        select(Examination).where(
            Examination.clinic_id == clinic_id,
            Examination.identifier_system == record.identifier_system,
            Examination.identifier_value == record.identifier_value,
        )
    ).one_or_none()


def _replay(uow: UnitOfWork, existing: Examination, record: ExaminationRecord) -> Submission:
    """The same identifier again: same content returns the stored examination, else 409."""
    if signing.content_hash(record.bundle) == existing.current.bundle_sha256:
        # what the first submission answered, the certificates' verdicts included
        replayed = uow.publish(SubmissionReplayed(existing, existing.current, record))
        assessments = [answer for answer in replayed if isinstance(answer, Assessment)]
        return Submission(existing, existing.current, created=False, assessments=assessments)
    raise Conflict(
        f"examination {record.identifier_value!r} of {existing.clinic_id} already exists with "
        f"different content; amend it with PUT /api/v1/examinations/{existing.id}",
        examination_id=existing.id,
        amend=f"/api/v1/examinations/{existing.id}",
    )


@dataclass(frozen=True)
class _Received:
    """A bundle accepted for storing: its record, as sent, from whom, and the person it names."""

    record: ExaminationRecord
    raw: bytes
    clinic: Clinic
    principal: Principal
    now: datetime
    person: Person
    person_created: bool
    others: tuple[str, ...]  # other persons holding one of its documents


def _receive(
    uow: UnitOfWork,
    *,
    principal: Principal,
    raw: bytes,
    record: ExaminationRecord,
    clinic: Clinic,
    now: datetime,
) -> _Received:
    """Check the clinic may submit this record now and find (or create) the person it names."""
    _check_clinic(clinic, record, now)
    matched = persons.match_or_create(
        uow.session, person=record.person, cipher=uow.cipher, index_key=uow.index_key, now=now
    )
    uow.session.flush()
    return _Received(
        record, raw, clinic, principal, now, matched.person, matched.created, matched.others
    )


def _previous_of(uow: UnitOfWork, record: ExaminationRecord, person_id: str) -> Examination | None:
    """The earlier examination a return examination continues (named, or the person's last)."""
    if record.previous_examination:
        previous = uow.session.get(Examination, record.previous_examination)
        if previous is None or previous.person_id != person_id:
            raise _refuse(
                "Bundle.entry[0].resource.extension",
                f"previous examination {record.previous_examination!r} is not an "
                "examination of this person",
            )
        if previous.examination_date > record.examination_date:
            raise _refuse(
                "Bundle.entry[0].resource.extension",
                f"previous examination {previous.id} is dated "
                f"{previous.examination_date.isoformat()}, after this examination "
                f"({record.examination_date.isoformat()}): it cannot precede it",
            )
        return previous
    if record.purpose == "return":
        return linkage.previous_pre_departure(
            uow.session, person_id=person_id, before=record.examination_date
        )
    return None


def submit(
    uow: UnitOfWork,
    *,
    principal: Principal,
    bundle_json: bytes,
    now: datetime | None = None,
) -> Submission:
    """Validate, verify (or custodially sign) and store a new examination; idempotent by id.

    In the same transaction, through VersionStored: a certificate for every destination whose
    ruleset is met, referrals, surveillance counts and the audit event.
    """
    authorize(principal, "examination.submit", clinic_id=principal.clinic_id)
    now = now or utcnow()
    record = _parse(bundle_json, uow.settings)
    clinic = _clinic_of(uow, principal, record)
    existing = _existing(uow, clinic.id, record)
    if existing is not None:
        return _replay(uow, existing, record)
    register.enforce_quota(uow.session, clinic, record.examination_date)
    received = _receive(
        uow, principal=principal, raw=bundle_json, record=record, clinic=clinic, now=now
    )
    person = received.person
    previous = _previous_of(uow, record, person.id)
    examination = Examination(
        id=f"EX{secrets.token_hex(12)}",
        clinic_id=clinic.id,
        person_id=person.id,
        identifier_system=record.identifier_system,
        identifier_value=record.identifier_value,
        status="final",
        current_version=1,
        purpose=record.purpose,
        origin=clinic.country,
        destination=record.destination,
        examination_date=record.examination_date,
        previous_examination_id=previous.id if previous else None,
        history_consent=record.consent_allows_history,
        created_at=now,
        updated_at=now,
        versions=[],
    )
    if not _insert_examination(uow.session, examination):
        # a concurrent twin won the race on (clinic, identifier): answer as the replay would
        twin = _existing(uow, clinic.id, record)
        if twin is None:
            raise Conflict(f"examination {record.identifier_value!r} is being stored; retry")
        return _replay(uow, twin, record)
    return _store_version(uow, examination, received)


def _insert_examination(session: Session, examination: Examination) -> bool:
    """Insert the examination's row unless its (clinic, identifier) is taken; whether it was.

    ON CONFLICT instead of a savepoint: a twin committed first is simply not inserted again
    (PostgreSQL waits for a twin still in flight). The object joins the session as stored.
    """
    table = cast(Table, Examination.__table__)
    statement = (
        dialect_insert(session)(table)
        .on_conflict_do_nothing(
            index_elements=["clinic_id", "identifier_system", "identifier_value"]
        )
        .returning(table.c.id)
    )
    if session.connection().execute(statement, row_of(examination)).first() is None:
        return False
    as_stored(session, examination)
    return True


def _store_version(uow: UnitOfWork, examination: Examination, received: _Received) -> Submission:
    """The one pipeline of submit and amend: link the person, retire the current version (if
    any), store the new one and tell the subscribers (referrals, surveillance, audit,
    certificates) in this transaction."""
    record, person, principal, now = (
        received.record,
        received.person,
        received.principal,
        received.now,
    )
    linkage.propose_matches(
        uow.session,
        person=person,
        data=record.person,
        created=received.person_created,
        others=received.others,
        examination_id=examination.id,
        index_key=uow.index_key,
        now=now,
    )
    linkage.link_dependant(
        uow.session,
        dependant=person,
        related=record.related_persons,
        examination_id=examination.id,
        cipher=uow.cipher,
        index_key=uow.index_key,
        now=now,
    )
    replaces = examination.current if examination.versions else None
    if replaces is not None:
        replaces.status = "amended"
        uow.publish(
            VersionRetired(
                examination,
                replaces,
                reason="superseded by an amended examination",
                actor=principal,
                now=now,
            )
        )
    number = examination.current_version + 1 if replaces is not None else 1
    version = _new_version(
        uow,
        examination=examination,
        number=number,
        record=record,
        raw=received.raw,
        clinic=received.clinic,
        now=now,
    )
    examination.current_version = number
    examination.person_id = person.id
    examination.purpose = record.purpose
    examination.destination = record.destination
    examination.examination_date = record.examination_date
    examination.history_consent = record.consent_allows_history
    examination.updated_at = now
    stored = VersionStored(
        examination, version, record, received.clinic, actor=principal, now=now, replaces=replaces
    )
    assessments = [answer for answer in uow.publish(stored) if isinstance(answer, Assessment)]
    return Submission(examination, version, created=True, assessments=assessments)


def _own_examination(
    uow: UnitOfWork, principal: Principal, examination_id: str, action: str
) -> Examination:
    authorize(principal, action)
    examination = uow.session.get(Examination, examination_id)
    # another clinic's examination answers as if it did not exist: ids reveal nothing
    if examination is None or (
        principal.role == "clinic" and principal.clinic_id != examination.clinic_id
    ):
        raise NotFound(f"no examination {examination_id!r}")
    authorize(principal, action, clinic_id=examination.clinic_id)
    return examination


def _vouched_for_by_stolen_key(uow: UnitOfWork, version: ExaminationVersion) -> bool:
    """Whether the version was signed or submitted once its key was compromised."""
    key = uow.session.get(SigningKey, version.signing_kid)
    since = compromised_since(key) if key is not None else None
    return since is not None and (version.signed_at >= since or version.submitted_at >= since)


def amend(
    uow: UnitOfWork,
    *,
    principal: Principal,
    examination_id: str,
    bundle_json: bytes,
    now: datetime | None = None,
) -> Submission:
    """Store a new version; the previous one becomes ``amended`` (its certificates go too)."""
    now = now or utcnow()
    examination = _own_examination(uow, principal, examination_id, "examination.submit")
    record = _parse(bundle_json, uow.settings)
    clinic = _clinic_of(uow, principal, record)
    if examination.status == "entered-in-error":
        raise Conflict(f"examination {examination_id} was withdrawn; submit a new one")
    if (record.identifier_system, record.identifier_value) != (
        examination.identifier_system,
        examination.identifier_value,
    ):
        raise _refuse(
            "Bundle.identifier",
            "an amendment must carry the examination's identifier "
            f"{examination.identifier_value!r}",
        )
    unchanged = signing.content_hash(record.bundle) == examination.current.bundle_sha256
    if unchanged and not _vouched_for_by_stolen_key(uow, examination.current):
        return Submission(examination, examination.current, created=False)
    # the same record re-signed with a new key after a compromise is a new version: its
    # certificates were revoked with the key, and the new signature earns new ones
    received = _receive(
        uow, principal=principal, raw=bundle_json, record=record, clinic=clinic, now=now
    )
    return _store_version(uow, examination, received)


def withdraw(
    uow: UnitOfWork,
    *,
    principal: Principal,
    examination_id: str,
    reason: str,
    now: datetime | None = None,
) -> Submission:
    """Mark the current version entered-in-error with a reason; its certificates are revoked."""
    now = now or utcnow()
    examination = _own_examination(uow, principal, examination_id, "examination.submit")
    if not reason or not reason.strip():
        raise _refuse("reason", "a reason is required to withdraw an examination", "required")
    if examination.status == "entered-in-error":
        raise Conflict(f"examination {examination_id} is already withdrawn")
    version = examination.current
    version.status = "entered-in-error"
    version.status_reason = reason.strip()
    examination.status = "entered-in-error"
    examination.updated_at = now
    uow.publish(
        VersionRetired(examination, version, reason=ENTERED_IN_ERROR, actor=principal, now=now)
    )
    return Submission(examination, version, created=False)


def read_bundle(
    uow: UnitOfWork,
    *,
    principal: Principal,
    examination_id: str,
    version: int | None = None,
) -> tuple[ExaminationVersion, bytes]:
    """The bundle byte for byte as signed, for the examining clinic; the read is audited."""
    examination = _own_examination(uow, principal, examination_id, "examination.read")
    chosen = (
        examination.current
        if version is None
        else next((v for v in examination.versions if v.version == version), None)
    )
    if chosen is None:
        raise NotFound(f"examination {examination_id} has no version {version}")
    raw = open_bundle(uow.cipher, chosen)
    audit(
        uow.session,
        actor=principal,
        action="examination.read",
        object_type="Examination",
        object_id=examination.id,
        detail={"version": chosen.version},
    )
    return chosen, raw

"""Issue certificates for examinations that meet a destination's ruleset, and serve them.

One examination version is assessed against every destination's ruleset in force on its date
that accepts its purpose; each met verdict becomes a certificate whose SMART Health Card the
registry signs. Verdict reasons go back to the clinic only. Revocation lives in
``revocation.py`` and is exported from here too, so callers need one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from registry.accreditation.models import Clinic
from registry.audit.service import Actor, Entry, SystemActor, record, record_all
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates import catalogue, holders, reevaluation, shc
from registry.certificates.assessment import Assessment
from registry.certificates.cards import (
    certificate_card,
    certificate_holder,
    find_certificate,
    sign_card,
)
from registry.certificates.holders import HOLDER, Holder
from registry.certificates.ids import new_certificate_id
from registry.certificates.labels import LANGUAGES
from registry.certificates.models import (
    Certificate,
    CertificateCard,
    RulesetReevaluation,
    RulesetVersion,
)
from registry.certificates.pdf import (
    PAPER_MARGINS,
    CertificateView,
    SlipView,
    render_certificate_pdf,
    render_slip_pdf,
)
from registry.certificates.qr import qr_png, qr_svg
from registry.certificates.revocation import (
    RULESET_CHANGED,
    Rotation,
    crl,
    crl_versions,
    revoke,
    revoke_after_key_compromise,
    revoke_for_examination,
    rotate_certificate_key,
)
from registry.certificates.rulesets import (
    RULESET_NOT_IN_FORCE,
    Reason,
    Ruleset,
    evaluate,
    ruleset_in_force,
)
from registry.config import Settings
from registry.crypto.keystore import KeyStore
from registry.db import UnitOfWork, as_stored, dialect_insert, row_of, utcnow
from registry.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from registry.events import (
    CertificateIssued,
    KeyCompromised,
    SubmissionReplayed,
    VersionRetired,
    VersionStored,
)
from registry.examinations.models import Examination, ExaminationVersion
from registry.fhir.record import ExaminationRecord
from registry.transparency.service import card_leaf

__all__ = [
    "RULESET_CHANGED",
    "Assessment",
    "Download",
    "Extension",
    "Rotation",
    "certificate_card",
    "certificate_holder",
    "crl",
    "crl_versions",
    "download",
    "extend_validity",
    "get_certificate",
    "issue_for_version",
    "list_rulesets",
    "pending_reevaluations",
    "queue_reevaluations",
    "reevaluate_batch",
    "reevaluation_jobs",
    "revoke",
    "revoke_after_key_compromise",
    "revoke_for_examination",
    "rotate_certificate_key",
    "sync_rulesets",
]

REGISTRY = SystemActor()
DOWNLOAD_KINDS = ("qr.svg", "qr.png", "card", "pdf", "slip")
_ID_ATTEMPTS = 8


@dataclass(frozen=True)
class Download:
    """A file served for a certificate."""

    content: bytes
    media_type: str
    filename: str


@dataclass(frozen=True)
class Extension:
    """A new ruleset version with a validity extension, and the certificates it lengthened."""

    ruleset: RulesetVersion
    extended: list[Certificate]


# -- rulesets --------------------------------------------------------------------------------
def sync_rulesets(uow: UnitOfWork, *, profiles_dir: Path) -> list[str]:
    """Store the ruleset files of ``profiles_dir/rulesets`` not stored yet; returns those added.

    A new version that applies to certificates already issued queues their re-evaluation for
    the rulesets worker; nothing is judged here.
    """
    now = utcnow()
    added = catalogue.sync_files(
        uow, rulesets_dir=Path(profiles_dir) / "rulesets", actor=REGISTRY, now=now
    )
    reevaluation.queue(uow, now=now)
    return added


def queue_reevaluations(uow: UnitOfWork, *, now: datetime | None = None) -> list[str]:
    """Queue a job for every version that applies to issued certificates and has none yet."""
    queued = reevaluation.queue(uow, now=now or utcnow())
    return [f"{j.destination}.v{j.version}" for j in queued]


def reevaluation_jobs(uow: UnitOfWork) -> list[RulesetReevaluation]:
    """Every re-evaluation of issued certificates, by destination and version."""
    return list(
        uow.session.scalars(
            select(RulesetReevaluation).order_by(
                RulesetReevaluation.destination, RulesetReevaluation.version
            )
        )
    )


def pending_reevaluations(uow: UnitOfWork) -> list[str]:
    """The versions whose re-evaluation of issued certificates is not done yet."""
    return [f"{j.destination}.v{j.version}" for j in reevaluation.outstanding(uow)]


def reevaluate_batch(
    uow: UnitOfWork, *, now: datetime | None = None, batch: int = reevaluation.DEFAULT_BATCH
) -> reevaluation.Progress | None:
    """Judge the next batch of issued certificates by a version that applies to them.

    Runs in the rulesets worker (or ``registry rulesets reevaluate``), outside any request;
    revokes what the version no longer accepts with reason ``ruleset-changed``. None when no
    job may run now. The caller commits each batch.
    """
    return reevaluation.work_batch(uow, actor=REGISTRY, now=now or utcnow(), batch=batch)


def list_rulesets(uow: UnitOfWork, *, destination: str | None = None) -> Sequence[RulesetVersion]:
    """Every published ruleset version (of one destination), oldest first."""
    return catalogue.versions(uow.session, destination=destination)


def extend_validity(
    uow: UnitOfWork,
    *,
    principal: Principal,
    destination: str,
    starts: date,
    ends: date,
    extra_days: int,
    reason: str,
    now: datetime,
) -> Extension:
    """Publish a new version with a validity extension and re-sign the cards it lengthens."""
    keystore, settings = uow.keystore, uow.settings
    authorize(principal, "ruleset.manage")
    if not reason.strip():
        raise BadRequest("an extension needs a reason")
    row, ruleset = catalogue.add_extension(
        uow,
        destination=destination.upper(),
        starts=starts,
        ends=ends,
        extra_days=extra_days,
        reason=reason.strip(),
        actor=principal,
        now=now,
    )
    extended = []
    candidates = uow.session.scalars(
        select(Certificate).where(
            Certificate.destination == ruleset.destination,
            Certificate.status == "valid",
            Certificate.base_valid_until >= min(e.starts for e in ruleset.extensions),
            Certificate.base_valid_until <= max(e.ends for e in ruleset.extensions),
        )
    ).all()
    for certificate in candidates:
        extra = max(
            (
                e.extra_days
                for e in ruleset.extensions
                if e.applies_to(certificate.base_valid_until)
            ),
            default=0,
        )
        valid_until = certificate.base_valid_until + timedelta(days=extra)
        if valid_until <= certificate.valid_until:
            continue
        certificate.valid_until = valid_until
        sign_card(
            uow.session,
            certificate,
            keystore=keystore,
            settings=settings,
            cipher=uow.cipher,
            now=now,
        )
        record(
            uow.session,
            actor=principal,
            action="certificate.extend",
            object_type="Certificate",
            object_id=certificate.id,
            detail={"ruleset_version": ruleset.version, "kid": certificate.kid},
            at=now,
        )
        extended.append(certificate)
    return Extension(ruleset=row, extended=extended)


# -- issuing ---------------------------------------------------------------------------------
def _latest_local_date(now: datetime) -> date:
    # Clinics date results in local time; nowhere is more than 14 hours ahead of UTC.
    return (now + timedelta(hours=14)).date()


def _rulesets_for(
    rulesets: Sequence[Ruleset], *, purpose: str, destination: str | None, on: date
) -> tuple[list[Ruleset], bool]:
    """The rulesets to assess, and whether the stated destination has one in force."""
    chosen = []
    stated_found = False
    for name in sorted({r.destination for r in rulesets}):
        ruleset = ruleset_in_force(rulesets, destination=name, on=on)
        if ruleset is None:
            continue
        if name == destination:
            stated_found = True
        if purpose in ruleset.accepted_purposes or name == destination:
            chosen.append(ruleset)
    return chosen, stated_found


def _applicable(
    session: Session, version: ExaminationVersion
) -> tuple[list[Ruleset], Assessment | None]:
    """The rulesets to assess a version against, and the refusal of its stated destination
    when that has no ruleset in force on the examination date (None otherwise)."""
    chosen, stated_found = _rulesets_for(
        catalogue.rulesets(session),
        purpose=version.purpose,
        destination=version.destination,
        on=version.examination_date,
    )
    if not version.destination or stated_found:
        return chosen, None
    day = version.examination_date.isoformat()
    reason = Reason(
        RULESET_NOT_IN_FORCE, None, f"no {version.destination} ruleset is in force on {day}"
    )
    return chosen, Assessment(version.destination, False, (reason,), None)


def issue_for_version(
    uow: UnitOfWork,
    *,
    examination: Examination,
    version: ExaminationVersion,
    record: ExaminationRecord,
    clinic: Clinic,
    now: datetime,
) -> list[Assessment]:
    """Assess a version against every ruleset that applies; certify each destination met."""
    keystore, settings = uow.keystore, uow.settings
    session = uow.session
    chosen, not_in_force = _applicable(session, version)
    assessments: list[Assessment] = [not_in_force] if not_in_force else []
    holder = holders.holder_from_person(record.person)
    verdicts = []
    drafts = []
    for ruleset in chosen:
        verdict = evaluate(
            ruleset,
            purpose=version.purpose,
            results=record.results,
            examination_date=version.examination_date,
            birth_date=record.person.birth_date,
            today=_latest_local_date(now),
        )
        verdicts.append((ruleset, verdict))
        if verdict.met:
            assert verdict.valid_from is not None and verdict.valid_until is not None
            # The same verdict without extensions, judged as of the last result so that only
            # the extensions can make a difference: what a later extension is measured from.
            unextended = evaluate(
                replace(ruleset, extensions=()),
                purpose=version.purpose,
                results=record.results,
                examination_date=version.examination_date,
                birth_date=record.person.birth_date,
                today=max([version.examination_date, *(r.effective for r in record.results)]),
            )
            drafts.append(
                _Draft(
                    destination=ruleset.destination,
                    ruleset_version=ruleset.version,
                    valid_from=verdict.valid_from,
                    valid_until=verdict.valid_until,
                    base_valid_until=unextended.valid_until or verdict.valid_until,
                )
            )
    issued = _new_certificates(
        uow,
        drafts,
        examination=examination,
        version=version,
        clinic=clinic,
        holder=holder,
        keystore=keystore,
        settings=settings,
        now=now,
    )
    assessments += [
        Assessment(
            destination=ruleset.destination,
            met=verdict.met,
            reasons=verdict.reasons,
            certificate=issued.get(ruleset.destination),
            ruleset_version=ruleset.version,
        )
        for ruleset, verdict in verdicts
    ]
    return assessments


def replayed_assessments(
    uow: UnitOfWork, *, version: ExaminationVersion, record: ExaminationRecord
) -> list[Assessment]:
    """What ``issue_for_version`` answered for a stored version, without issuing anything.

    The certificates are those the version got (whatever their status now); a destination
    whose rules were not met is judged again as of the version's submission, which gives the
    same reasons for the same results.
    """
    session = uow.session
    issued = {
        c.destination: c
        for c in session.scalars(
            select(Certificate).where(Certificate.version_id == version.id).order_by(Certificate.id)
        )
    }
    chosen, not_in_force = _applicable(session, version)
    assessments: list[Assessment] = []
    if not_in_force and version.destination not in issued:
        assessments.append(not_in_force)
    for ruleset in chosen:
        certificate = issued.pop(ruleset.destination, None)
        if certificate is not None:
            assessments.append(
                Assessment(ruleset.destination, True, (), certificate, certificate.ruleset_version)
            )
            continue
        verdict = evaluate(
            ruleset,
            purpose=version.purpose,
            results=record.results,
            examination_date=version.examination_date,
            birth_date=record.person.birth_date,
            today=_latest_local_date(version.submitted_at),
        )
        assessments.append(
            Assessment(ruleset.destination, verdict.met, verdict.reasons, None, ruleset.version)
        )
    for destination, certificate in sorted(issued.items()):
        assessments.append(
            Assessment(destination, True, (), certificate, certificate.ruleset_version)
        )
    return assessments


@dataclass(frozen=True)
class _Draft:
    """A certificate a met verdict calls for, before it has an id and a card."""

    destination: str
    ruleset_version: int
    valid_from: date
    valid_until: date
    base_valid_until: date


def _new_certificates(
    uow: UnitOfWork,
    drafts: Sequence[_Draft],
    *,
    examination: Examination,
    version: ExaminationVersion,
    clinic: Clinic,
    holder: Holder,
    keystore: KeyStore,
    settings: Settings,
    now: datetime,
) -> dict[str, Certificate]:
    """Store the drafts as certificates with signed cards, by destination; audited.

    All of an examination's certificates go in under one savepoint. Ids are drawn at random
    from 30**7 per destination, so a collision (with a stored id or a concurrent issue) is
    rare enough to answer by drawing every id of the batch again.
    """
    if not drafts:
        return {}
    session = uow.session
    cipher = uow.cipher  # the app's data cipher, rotated with its keys
    secret_hash = holders.secret_hash(
        holders.holder_secret(keystore, examination_id=examination.id)
    )
    for _attempt in range(_ID_ATTEMPTS):
        issued = {}
        for draft in drafts:
            certificate_id = new_certificate_id(draft.destination)
            certificate = Certificate(
                id=certificate_id,
                examination_id=examination.id,
                version_id=version.id,
                person_id=examination.person_id,
                clinic_id=clinic.id,
                destination=draft.destination,
                purpose=version.purpose,
                ruleset_version=draft.ruleset_version,
                status="valid",
                valid_from=draft.valid_from,
                valid_until=draft.valid_until,
                base_valid_until=draft.base_valid_until,
                issued_at=now,
                sealed_holder=holders.seal_holder(holder, cipher, certificate_id=certificate_id),
                holder_secret_hash=secret_hash,
                cards=[],
            )
            certificate.clinic = clinic
            sign_card(
                session,
                certificate,
                keystore=keystore,
                settings=settings,
                cipher=cipher,
                now=now,
                holder=holder,
                examination_sha256=version.bundle_sha256,
            )
            issued[draft.destination] = certificate
        if not _store_certificates(session, list(issued.values())):
            continue
        entries = [
            Entry(
                action="certificate.issue",
                object_type="Certificate",
                object_id=issued[draft.destination].id,
                detail={
                    "examination": examination.id,
                    "version": version.version,
                    "destination": draft.destination,
                    "ruleset_version": draft.ruleset_version,
                    "kid": issued[draft.destination].kid,
                },
            )
            for draft in drafts
        ]
        record_all(session, actor=REGISTRY, entries=entries, at=now)
        for certificate in issued.values():
            uow.publish(CertificateIssued(certificate, now=now))
        return issued
    raise RuntimeError(f"no free certificate ids after {_ID_ATTEMPTS} draws")


def _store_certificates(session: Session, certificates: list[Certificate]) -> bool:
    """Insert the certificates and their cards unless an id is taken; whether they went in.

    ON CONFLICT instead of a savepoint: when any id was drawn before (stored, or a concurrent
    issue), the rows that did go in are deleted again and the caller draws every id anew. The
    certificates join the session as stored; their cards are read back only when asked for.
    """
    table = cast(Table, Certificate.__table__)
    rows = [row_of(certificate) for certificate in certificates]
    connection = session.connection()
    statement = dialect_insert(session)(table).on_conflict_do_nothing(index_elements=["id"])
    stored = set(connection.execute(statement.returning(table.c.id), rows).scalars())
    if len(stored) < len(certificates):
        if stored:
            session.execute(delete(Certificate).where(Certificate.id.in_(stored)))
        return False
    cards = []
    for certificate in certificates:
        cards += [
            {**row_of(card, without_id=True), "certificate_id": certificate.id}
            for card in certificate.cards
        ]
        # the cards are written below, not by the session: it loads them when they are read
        set_committed_value(certificate, "cards", [])
        as_stored(session, certificate)
        session.expire(certificate, ["cards"])
    connection.execute(insert(cast(Table, CertificateCard.__table__)), cards)
    return True


# -- reading and downloads -------------------------------------------------------------------
def _open(
    session: Session,
    *,
    principal: Principal,
    certificate_id: str,
    holder_secret: str | None,
    action: str,
) -> tuple[Certificate, Actor]:
    """The certificate if the caller may ``action`` it by token, or holds the holder secret."""
    if holder_secret is None and not principal.authenticated:
        raise Unauthorized("a certificate is shown to its clinic (bearer token) or its holder (h)")
    certificate = find_certificate(session, certificate_id)
    if holder_secret is not None:
        if not holders.secret_matches(holder_secret, certificate.holder_secret_hash):
            raise Forbidden("the holder link does not belong to this certificate")
        return certificate, HOLDER
    authorize(principal, action, clinic_id=certificate.clinic_id)
    return certificate, principal


def get_certificate(
    uow: UnitOfWork,
    *,
    principal: Principal,
    certificate_id: str,
    holder_secret: str | None = None,
) -> Certificate:
    """A certificate's status and validity for its clinic, admin or holder; audited."""
    certificate, actor = _open(
        uow.session,
        principal=principal,
        certificate_id=certificate_id,
        holder_secret=holder_secret,
        action="certificate.read",
    )
    record(
        uow.session,
        actor=actor,
        action="certificate.read",
        object_type="Certificate",
        object_id=certificate.id,
    )
    certificate.log_leaf = card_leaf(uow.session, certificate.id)  # type: ignore[attr-defined]
    return certificate


def download(
    uow: UnitOfWork,
    *,
    principal: Principal,
    certificate_id: str,
    kind: str,
    holder_secret: str | None = None,
    language: str | None = None,
    paper: str = "A5",
) -> Download:
    """The QR (SVG, PNG), ``.smart-health-card`` file or PDF: for its clinic or its holder."""
    keystore, settings = uow.keystore, uow.settings
    if kind not in DOWNLOAD_KINDS:
        raise NotFound(f"no download {kind!r}")
    if language is not None and language not in LANGUAGES:
        raise BadRequest(f"lang must be one of {', '.join(LANGUAGES)}")
    if paper not in PAPER_MARGINS:
        raise BadRequest(f"paper must be one of {', '.join(PAPER_MARGINS)}")
    session = uow.session
    certificate, actor = _open(
        session,
        principal=principal,
        certificate_id=certificate_id,
        holder_secret=holder_secret,
        action="certificate.download",
    )
    detail: dict[str, object] = {"format": kind}
    if kind == "slip":
        # the holder's own page of any certificate of the examination, valid or not
        holder = certificate_holder(certificate, cipher=uow.cipher)
        language = language or holder.language
        detail.update(language=language)
        result = Download(
            render_slip_pdf(
                _slip_view(session, certificate, holder, keystore=keystore, settings=settings),
                holder_language=language,
            ),
            "application/pdf",
            f"{certificate.id}-holder-slip.pdf",
        )
    else:
        result = _printable(uow, certificate, kind, detail, language=language, paper=paper)
    record(
        session,
        actor=actor,
        action="certificate.download",
        object_type="Certificate",
        object_id=certificate.id,
        detail=detail,
    )
    return result


def _printable(
    uow: UnitOfWork,
    certificate: Certificate,
    kind: str,
    detail: dict[str, object],
    *,
    language: str | None,
    paper: str,
) -> Download:
    """A valid certificate's QR, card file or PDF; what the audit event says goes in ``detail``."""
    if certificate.status != "valid":
        raise Conflict(f"certificate {certificate.id} is {certificate.status}; nothing to print")
    token = certificate_card(certificate, cipher=uow.cipher)
    if kind == "qr.svg":
        return Download(qr_svg(shc.qr_payload(token)), "image/svg+xml", f"{certificate.id}.svg")
    if kind == "qr.png":
        return Download(
            qr_png(shc.qr_payload(token), scale=6), "image/png", f"{certificate.id}.png"
        )
    if kind == "card":
        return Download(
            shc.health_card_file([token]),
            shc.HEALTH_CARD_MEDIA_TYPE,
            f"{certificate.id}.smart-health-card",
        )
    holder = certificate_holder(certificate, cipher=uow.cipher)
    language = language or holder.language
    detail.update(language=language, paper=paper)
    view = _view(certificate, holder, token, keystore=uow.keystore, settings=uow.settings)
    return Download(
        render_certificate_pdf(view, holder_language=language, paper=paper),
        "application/pdf",
        f"{certificate.id}.pdf",
    )


def _view(
    certificate: Certificate,
    holder: Holder,
    token: str,
    *,
    keystore: KeyStore,
    settings: Settings,
) -> CertificateView:
    return CertificateView(
        certificate_id=certificate.id,
        family_name=holder.family_name,
        given_names=holder.given_names,
        birth_date=holder.birth_date,
        destination=certificate.destination,
        purpose=certificate.purpose,
        clinic_id=certificate.clinic_id,
        clinic_name=certificate.clinic.name,
        issued_at=certificate.issued_at,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        qr_text=shc.qr_payload(token),
        base_url=settings.base_url,
    )


def _slip_view(
    session: Session,
    certificate: Certificate,
    holder: Holder,
    *,
    keystore: KeyStore,
    settings: Settings,
) -> SlipView:
    examination_id = certificate.examination_id
    siblings = session.scalars(
        select(Certificate)
        .where(Certificate.examination_id == examination_id)
        .order_by(Certificate.issued_at, Certificate.id)
    ).all()
    return SlipView(
        family_name=holder.family_name,
        given_names=holder.given_names,
        birth_date=holder.birth_date,
        certificates=tuple((c.id, c.destination) for c in siblings if c.status == "valid"),
        base_url=settings.base_url,
        holder_secret=holders.holder_secret(keystore, examination_id=examination_id),
        recovery_code=holders.recovery_code(keystore, examination_id=examination_id),
    )


# -- subscriptions (registry/subscriptions.py) ------------------------------------------------
def on_version_stored(uow: UnitOfWork, event: VersionStored) -> list[Assessment]:
    """Assess the new version against every ruleset that applies and certify what is met."""
    return issue_for_version(
        uow,
        examination=event.examination,
        version=event.version,
        record=event.record,
        clinic=event.clinic,
        now=event.now,
    )


def on_submission_replayed(uow: UnitOfWork, event: SubmissionReplayed) -> list[Assessment]:
    """The assessments the first submission of this version answered."""
    return replayed_assessments(uow, version=event.version, record=event.record)


def on_version_retired(uow: UnitOfWork, event: VersionRetired) -> None:
    """A version amended or withdrawn takes its certificates with it."""
    revoke_for_examination(
        uow,
        examination_id=event.examination.id,
        reason=event.reason,
        actor=event.actor,
        now=event.now,
    )


def on_key_compromised(uow: UnitOfWork, event: KeyCompromised) -> None:
    """What was signed with a stolen clinic key from the compromise on is revoked."""
    revoke_after_key_compromise(
        uow, kid=event.kid, since=event.since, actor=event.actor, now=event.now
    )

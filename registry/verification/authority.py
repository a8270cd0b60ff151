"""The authority view: a destination's legally required results of one examination, audited.

An authority reads an examination only for its own country: the examination was made for that
destination, or certified for it. It sees the tests its own country's ruleset (in force on the
examination date) requires of a person of the holder's age, with their outcomes, and nothing
else the examination holds. Every read states a purpose of use and is audited with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select

from registry.accreditation.models import Clinic
from registry.accreditation.status import accreditation_at, accredited_on
from registry.audit.service import record
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.certificates import catalogue
from registry.certificates.models import Certificate
from registry.certificates.rulesets import Ruleset, ruleset_in_force
from registry.db import UnitOfWork, utcnow
from registry.errors import Forbidden, NotFound
from registry.examinations.models import Examination, Person
from registry.examinations.persons import open_identity
from registry.examinations.sealed import open_bundle, open_outcome
from registry.fhir import purpose_of_use as purpose_of_use_codes

# The purposes an authority may state, from HL7's PurposeOfUse value set (codes of
# v3-ActReason); every other code, and free text, is refused (registry/verification/README.md).
PURPOSE_OF_USE_SYSTEM = purpose_of_use_codes.SYSTEM
PURPOSES_OF_USE = purpose_of_use_codes.AUTHORITY


@dataclass(frozen=True)
class AuthorityTest:
    """One required test and its outcome."""

    requirement: str
    concept: str
    loinc: str
    outcome: str
    effective: date


@dataclass(frozen=True)
class AuthorityRead:
    """What the authority view answers (the schema lists exactly these fields)."""

    id: str
    status: str
    version: int
    purpose: str
    destination: str | None
    examination_date: date
    clinic: dict[str, str]
    holder: dict[str, object]
    signature: dict[str, object]
    ruleset: Ruleset
    tests: list[AuthorityTest]
    certificates: list[Certificate]
    purpose_of_use: str
    read_at: datetime


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def examination_for_authority(
    uow: UnitOfWork,
    *,
    principal: Principal,
    examination_id: str,
    purpose_of_use: str,
    now: datetime | None = None,
) -> AuthorityRead:
    """The required tests of an examination for the calling authority's country, audited."""
    cipher = uow.cipher
    authorize(principal, "authority.read")
    purpose = purpose_of_use_codes.accepted(purpose_of_use, PURPOSES_OF_USE)
    now = now or utcnow()
    session = uow.session
    # an examination outside the caller's jurisdiction answers exactly like one that does not
    # exist: the answer must not confirm that someone was examined
    unknown = NotFound(f"no examination {examination_id!r} for {principal.country}")
    examination = session.get(Examination, examination_id)
    if examination is None:
        raise unknown
    certificates = list(
        session.scalars(
            select(Certificate)
            .where(Certificate.examination_id == examination.id)
            .order_by(Certificate.issued_at, Certificate.id)
        )
    )
    countries = {c.destination for c in certificates}
    if examination.destination:
        countries.add(examination.destination)
    if principal.country not in countries:
        raise unknown
    authorize(principal, "authority.read", countries=(principal.country,))
    assert principal.country is not None
    known = catalogue.rulesets(session)
    # the version a certificate was issued under is the one that was applied; only without a
    # certificate does the view fall back to the version in force on the examination date
    applied = [c for c in certificates if c.destination == principal.country]
    ruleset = next(
        (
            r
            for r in known
            if applied
            and r.destination == principal.country
            and r.version == applied[-1].ruleset_version
        ),
        None,
    ) or ruleset_in_force(known, destination=principal.country, on=examination.examination_date)
    if ruleset is None:
        raise Forbidden(
            f"no {principal.country} ruleset applies to an examination on "
            f"{examination.examination_date.isoformat()}"
        )
    person = session.get(Person, examination.person_id)
    assert person is not None
    identity = open_identity(person, cipher)
    version = examination.current
    open_bundle(cipher, version)  # the record as signed must be intact, or nothing is answered
    required = ruleset.required_tests_at_age(
        _age(identity.birth_date, examination.examination_date)
    )
    tests = [
        AuthorityTest(
            requirement=requirement.key,
            concept=result.concept,
            loinc=result.loinc,
            outcome=open_outcome(cipher, result),
            effective=result.effective,
        )
        for requirement in required
        for result in version.results
        if result.concept in requirement.any_of
    ]
    examining = session.get(Clinic, examination.clinic_id)
    assert examining is not None
    day = examination.examination_date
    record(
        session,
        actor=principal,
        action="examination.authority-read",
        object_type="Examination",
        object_id=examination.id,
        purpose_of_use=purpose,
        detail={
            "ruleset": f"{ruleset.destination}.v{ruleset.version}",
            "version": version.version,
            "tests": len(tests),
        },
        at=now,
    )
    return AuthorityRead(
        id=examination.id,
        status=version.status,
        version=version.version,
        purpose=examination.purpose,
        destination=examination.destination,
        examination_date=day,
        clinic={
            "id": examining.id,
            "name": examining.name,
            "country": examining.country,
            "accreditation_at_examination": "active"
            if accredited_on(examining, day)
            else accreditation_at(examining, datetime.combine(day, time.max, UTC)),
        },
        holder={
            "name": identity.display_name,
            "birth_date": identity.birth_date,
            "document_hint": identity.document_hint,
        },
        signature={
            "kid": version.signing_kid,
            "custodial": version.custodial,
            "signed_at": version.signed_at,
            "bundle_sha256": version.bundle_sha256,
        },
        ruleset=ruleset,
        tests=tests,
        certificates=[c for c in certificates if c.destination == principal.country],
        purpose_of_use=purpose,
        read_at=now,
    )

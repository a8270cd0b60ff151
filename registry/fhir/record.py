"""The examination record extracted from a valid bundle: plain values for other services."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DocumentData:
    """An identity document the person showed at the examination."""

    type: str  # identity-document-type code: passport, id-card, birth-certificate, residence-permit
    country: str  # ISO 3166-1 alpha-2 of the issuing country
    number: str
    expiry: datetime.date | None


@dataclass(frozen=True)
class PhotoData:
    """The photo captured at the examination."""

    content_type: str
    data: bytes


@dataclass(frozen=True)
class PersonData:
    """The examined person as the bundle describes them."""

    family_names: list[str]  # every variant, Latin first, then other scripts
    given_names: list[str]
    patronymic: str | None
    sex: str  # male | female | other | unknown
    birth_date: datetime.date
    citizenship: str | None
    documents: list[DocumentData]
    photo: PhotoData | None
    display_name: str  # "Given Family" from the Latin-script name when there is one


@dataclass(frozen=True)
class TestResultData:
    """One test: concept key, LOINC code used ('' for clinical examinations), outcome."""

    __test__ = False  # the name starts with "Test"; keep pytest from collecting it

    concept: str
    loinc: str
    # chest-xray: normal | abnormal-tb | abnormal-other; others: positive | negative | indeterminate
    outcome: str
    effective: datetime.date


@dataclass(frozen=True)
class ReferralData:
    """A referral to a programme facility."""

    reason: str  # referral-reason code
    target_facility: str | None  # registry id of the facility, when the clinic named one
    note: str | None


@dataclass(frozen=True)
class RelatedPersonData:
    """The worker a dependant (spouse, child, ward) is examined with, as the bundle names them."""

    relationship: str  # v3 RoleCode of the worker to the examined person: FTH, MTH, PRN, ...
    dependant_role: str  # what the examined person is to the worker: child | spouse | ward
    person: PersonData  # names, sex, birth date and documents of the worker


@dataclass(frozen=True)
class SignatureData:
    """Bundle.signature as submitted; checking the JWS is the crypto layer's job."""

    when: datetime.datetime
    who_reference: str
    sig_format: str
    data: str  # base64 of the detached compact JWS, exactly as submitted


@dataclass(frozen=True)
class ExaminationRecord:
    """Everything the registry needs from one examination bundle."""

    bundle: dict[str, Any]  # the parsed JSON, unchanged
    identifier_system: str
    identifier_value: str
    purpose: str
    destination: str | None
    examination_date: datetime.date
    clinic_id: str
    practitioner_licence: str
    practitioner_name: str
    person: PersonData
    consent_given: bool
    consent_allows_history: bool
    results: list[TestResultData]
    referrals: list[ReferralData]
    previous_examination: str | None
    signature: SignatureData | None
    related_persons: list[RelatedPersonData] = field(default_factory=list)

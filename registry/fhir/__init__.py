"""FHIR examination records: the R4B facade, our profile checks and terminology."""

from registry.fhir.bundle import strip_signature
from registry.fhir.record import (
    DocumentData,
    ExaminationRecord,
    PersonData,
    PhotoData,
    ReferralData,
    RelatedPersonData,
    SignatureData,
    TestResultData,
)
from registry.fhir.validation import parse_examination_bundle

__all__ = [
    "DocumentData",
    "ExaminationRecord",
    "PersonData",
    "PhotoData",
    "ReferralData",
    "RelatedPersonData",
    "SignatureData",
    "TestResultData",
    "parse_examination_bundle",
    "strip_signature",
]

"""Examination bundles made from the profile's valid example: demo data, benchmarks and tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from registry.config import ROOT
from registry.fhir.terminology import load_terminology

EXAMPLES = ROOT / "fhir_profiles" / "examples"
SNOMED = "http://snomed.info/sct"
CXR = "https://exam-registry.org/fhir/CodeSystem/chest-xray-finding"
CLINICAL = "https://exam-registry.org/fhir/CodeSystem/clinical-finding"
CANONICAL = "https://exam-registry.org/fhir"
PATRONYMIC = f"{CANONICAL}/StructureDefinition/patronymic"
DOCUMENT_SYSTEM = f"{CANONICAL}/sid/identity-document/"
# For each coding that means "nothing found", the coding meaning "found".
POSITIVE_OF = {
    (SNOMED, "131194007"): (SNOMED, "11214006"),  # non-reactive -> reactive
    (SNOMED, "260385009"): (SNOMED, "10828004"),  # negative -> positive
    (SNOMED, "260415000"): (SNOMED, "260373001"),  # not detected -> detected
    (CLINICAL, "absent"): (CLINICAL, "present"),
}
CXR_CODES = {
    "normal": "normal",
    "abnormal-tb": "abnormal-suggestive-of-tb",
    "abnormal-other": "abnormal-other",
}
# the pre-departure example's days: examination, next-day laboratory results, document date
EXAMPLE_DAYS = ("2025-03-10", "2025-03-11", "2025-03-12")


@dataclass(frozen=True)
class Migrant:
    """Who is examined: Latin and Cyrillic names, patronymic, sex, birth date, passport."""

    family: tuple[str, str]  # (Latin, Cyrillic)
    given: tuple[str, str]
    patronymic: tuple[str, str] | None
    sex: str
    birth_date: date
    passport: str
    citizenship: str


@cache
def _template_text(example: str) -> str:
    return (EXAMPLES / example).read_text("utf-8")


def examination_bundle(
    *,
    clinic_id: str = "TJ-DUS-0007",
    number: str = "2026-000001",
    examined_on: date | None = None,
    outcomes: dict[str, str] | None = None,
    passport: str | None = None,
    migrant: Migrant | None = None,
    destination: str | None = None,
    profiles_dir: Path | None = None,
    purpose: str = "pre-departure",
    documents: Sequence[tuple[str, str, str]] | None = None,
    share_history: bool = True,
    previous: str | None = None,
    referrals: Sequence[tuple[str, str | None]] = (),
    worker: Migrant | None = None,
    relationship: str = "FTH",
) -> dict[str, Any]:
    """The valid pre-departure example for another clinic, number, date, person and outcomes.

    ``purpose`` other than pre-departure drops the destination unless one is given;
    ``documents`` (type, issuing country, number) replace the person's documents;
    ``referrals`` (reason, facility registry id) add ServiceRequests; ``worker`` names the
    worker a dependant is examined with (a RelatedPerson with ``relationship``).
    """
    text = _template_text("valid-pre-departure.json")
    examined_on = examined_on or (datetime.now(UTC).date() - timedelta(days=3))
    for offset, original in enumerate(EXAMPLE_DAYS):
        text = text.replace(original, (examined_on + timedelta(days=offset)).isoformat())
    text = text.replace("TJ-DUS-0007", clinic_id)
    bundle: dict[str, Any] = json.loads(text)
    bundle["identifier"]["value"] = number
    terminology = load_terminology(profiles_dir)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind == "Composition":
            _compose(resource, purpose=purpose, destination=destination, previous=previous)
        if kind == "Consent" and not share_history:
            resource["provision"].pop("provision", None)
        if kind == "Patient":
            if migrant is not None:
                _describe(resource, migrant)
            if passport:
                resource["identifier"][0]["value"] = passport
            if documents is not None:
                expiry = resource["identifier"][0].get("period")
                resource["identifier"] = [_document(*d, expiry) for d in documents]
        if kind != "Observation" or not outcomes:
            continue
        coding = resource["code"]["coding"][0]
        concept = terminology.concept_for(coding.get("system"), coding.get("code"))
        if concept is None or concept.key not in outcomes:
            continue
        wanted = outcomes[concept.key]
        value = resource["valueCodeableConcept"]["coding"][0]
        value.pop("display", None)
        if concept.key == "chest-xray":
            value["system"], value["code"] = CXR, CXR_CODES[wanted]
        elif wanted == "positive":
            value["system"], value["code"] = POSITIVE_OF[(value["system"], value["code"])]
    for reason, facility in referrals:
        add_referral(bundle, reason=reason, facility=facility)
    if worker is not None:
        add_worker(bundle, worker=worker, relationship=relationship)
    return bundle


def add_worker(bundle: dict[str, Any], *, worker: Migrant, relationship: str) -> str:
    """Add the RelatedPerson naming the worker a dependant is examined with; its fullUrl."""
    url = _new_url(bundle)
    related: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": _entry_url(bundle, "Patient")},
        "relationship": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": relationship,
                    }
                ]
            }
        ],
        "identifier": [_document("passport", worker.citizenship, worker.passport, None)],
        "name": [
            {"use": "official", "family": worker.family[script], "given": [worker.given[script]]}
            for script in (0, 1)
        ],
        "gender": worker.sex,
        "birthDate": worker.birth_date.isoformat(),
    }
    bundle["entry"].append({"fullUrl": url, "resource": related})
    _section(bundle, "identity", "Identity")["entry"].append({"reference": url})
    return url


def _compose(
    composition: dict[str, Any], *, purpose: str, destination: str | None, previous: str | None
) -> None:
    composition["category"][0]["coding"][0]["code"] = purpose
    extensions = composition.setdefault("extension", [])
    for extension in list(extensions):
        if extension["url"].endswith("/destination-country"):
            if destination:
                extension["valueCode"] = destination
            elif purpose != "pre-departure":
                extensions.remove(extension)
    if previous:
        extensions.append(
            {
                "url": f"{CANONICAL}/StructureDefinition/previous-examination",
                "valueIdentifier": {"system": f"{CANONICAL}/sid/examination", "value": previous},
            }
        )


def _document(
    kind: str, country: str, number: str, period: dict[str, str] | None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "use": "official",
        "type": {
            "coding": [{"system": f"{CANONICAL}/CodeSystem/identity-document-type", "code": kind}]
        },
        "system": f"{DOCUMENT_SYSTEM}{country}",
        "value": number,
    }
    if period:
        document["period"] = dict(period)
    return document


def _new_url(bundle: dict[str, Any]) -> str:
    # derived from the examination number, so the same arguments give the same bundle
    seed = f"{bundle['identifier']['value']}/{len(bundle['entry'])}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"


def _entry_url(bundle: dict[str, Any], kind: str) -> str:
    return str(next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind))


def _section(bundle: dict[str, Any], code: str, title: str) -> dict[str, Any]:
    composition = bundle["entry"][0]["resource"]
    for section in composition["section"]:
        if section["code"]["coding"][0]["code"] == code:
            found: dict[str, Any] = section
            return found
    section = {
        "title": title,
        "code": {
            "coding": [{"system": f"{CANONICAL}/CodeSystem/composition-section", "code": code}]
        },
        "entry": [],
    }
    composition["section"].append(section)
    return section


def add_referral(bundle: dict[str, Any], *, reason: str, facility: str | None) -> str:
    """Add a ServiceRequest referring the person to a programme facility; its fullUrl."""
    url = _new_url(bundle)
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "reasonCode": [
            {"coding": [{"system": f"{CANONICAL}/CodeSystem/referral-reason", "code": reason}]}
        ],
        "subject": {"reference": _entry_url(bundle, "Patient")},
        "encounter": {"reference": _entry_url(bundle, "Encounter")},
        "requester": {"reference": _entry_url(bundle, "Practitioner")},
    }
    if facility:
        request["performer"] = [
            {"identifier": {"system": f"{CANONICAL}/sid/clinic", "value": facility}}
        ]
    bundle["entry"].append({"fullUrl": url, "resource": request})
    _section(bundle, "referrals", "Referrals")["entry"].append({"reference": url})
    return url


def _describe(patient: dict[str, Any], migrant: Migrant) -> None:
    names = []
    for script in (0, 1):
        name: dict[str, Any] = {
            "use": "official",
            "family": migrant.family[script],
            "given": [migrant.given[script]],
        }
        if migrant.patronymic:
            name["extension"] = [{"url": PATRONYMIC, "valueString": migrant.patronymic[script]}]
        names.append(name)
    patient["name"] = names
    patient["gender"] = migrant.sex
    patient["birthDate"] = migrant.birth_date.isoformat()
    patient.pop("photo", None)
    document = patient["identifier"][0]
    document["value"] = migrant.passport
    document["system"] = (
        f"https://exam-registry.org/fhir/sid/identity-document/{migrant.citizenship}"
    )
    for extension in patient.get("extension", []):
        if extension["url"].endswith("patient-citizenship"):
            extension["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = (
                migrant.citizenship
            )

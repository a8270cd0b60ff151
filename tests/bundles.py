"""Examination bundles for tests: the profile's valid examples, re-dated and varied."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from registry.crypto.keys import PrivateKey
from registry.examinations.signing import sign_bundle
from registry.fhir.terminology import load_terminology

EXAMPLES = Path(__file__).resolve().parents[1] / "fhir_profiles" / "examples"
SNOMED = "http://snomed.info/sct"
CXR = "https://exam-registry.org/fhir/CodeSystem/chest-xray-finding"
CLINICAL = "https://exam-registry.org/fhir/CodeSystem/clinical-finding"
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
# the example's three days: examination, next-day lab results, document date
EXAMPLE_DAYS = {
    "valid-pre-departure.json": ("2025-03-10", "2025-03-11", "2025-03-12"),
}


def examination_bundle(
    *,
    clinic_id: str = "TJ-DUS-0007",
    number: str = "2026-000001",
    examined_on: date | None = None,
    outcomes: dict[str, str] | None = None,
    passport: str | None = None,
    example: str = "valid-pre-departure.json",
) -> dict[str, Any]:
    """The valid pre-departure example for another clinic, number, date and outcomes."""
    text = (EXAMPLES / example).read_text("utf-8")
    examined_on = examined_on or (datetime.now(UTC).date() - timedelta(days=3))
    for offset, original in enumerate(EXAMPLE_DAYS[example]):
        text = text.replace(original, (examined_on + timedelta(days=offset)).isoformat())
    text = text.replace("TJ-DUS-0007", clinic_id)
    bundle: dict[str, Any] = json.loads(text)
    bundle["identifier"]["value"] = number
    terminology = load_terminology()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient" and passport:
            resource["identifier"][0]["value"] = passport
        if resource["resourceType"] != "Observation" or not outcomes:
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
    return bundle


def signed(
    bundle: dict[str, Any], key: PrivateKey, kid: str, when: datetime | None = None
) -> dict[str, Any]:
    """The bundle signed by a clinic key (as `registry sign` does)."""
    return sign_bundle(bundle, key, kid=kid, when=when or datetime.now(UTC))


def body(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False).encode("utf-8")

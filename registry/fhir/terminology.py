"""Our CodeSystems, ValueSets and the result ConceptMap, loaded once from fhir_profiles/."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANONICAL_BASE = "https://exam-registry.org/fhir"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ISO_3166 = "urn:iso:std:iso:3166"

EXAM_TEST_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/exam-test"
EXAM_PURPOSE_VS = f"{CANONICAL_BASE}/ValueSet/exam-purpose"
EXAM_TEST_CODE_VS = f"{CANONICAL_BASE}/ValueSet/exam-test-code"
COUNTRY_VS = f"{CANONICAL_BASE}/ValueSet/iso3166-alpha2"
REFERRAL_REASON_VS = f"{CANONICAL_BASE}/ValueSet/referral-reason"
IDENTITY_DOCUMENT_TYPE_VS = f"{CANONICAL_BASE}/ValueSet/identity-document-type"
COMPOSITION_SECTION_VS = f"{CANONICAL_BASE}/ValueSet/composition-section"
CONSENT_PROVISION_VS = f"{CANONICAL_BASE}/ValueSet/consent-provision"
DOCUMENT_TYPE_VS = f"{CANONICAL_BASE}/ValueSet/document-type"
DEPENDANT_RELATIONSHIP_VS = f"{CANONICAL_BASE}/ValueSet/dependant-relationship"
RESULT_OUTCOME_MAP = f"{CANONICAL_BASE}/ConceptMap/result-outcome"

# Identifier systems of ours, and the registry id of a clinic or facility: CC-AAA-9999.
CLINIC_SYSTEM = f"{CANONICAL_BASE}/sid/clinic"
EXAMINATION_SYSTEM = f"{CANONICAL_BASE}/sid/examination"
CLINIC_ID = re.compile(r"^([A-Z]{2})-[A-Z]{3}-\d{4}$")

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parents[2] / "fhir_profiles"


class TerminologyError(Exception):
    """fhir_profiles/ is missing something the registry relies on: a deployment fault."""


@dataclass(frozen=True)
class TestConcept:
    """One test of the examination, keyed by our contract name (e.g. 'hiv-screening')."""

    key: str
    display: str
    loinc_codes: tuple[str, ...]  # empty for clinical examinations coded with exam-test itself
    result_value_set: str


@dataclass(frozen=True)
class Terminology:
    """Membership and normalisation answers over the loaded terminology."""

    value_sets: dict[str, frozenset[tuple[str, str]]]
    concepts: dict[str, TestConcept]
    concept_by_loinc: dict[str, TestConcept]
    outcomes: dict[tuple[str, str], str]
    displays: dict[tuple[str, str], str]

    def in_value_set(self, value_set: str, system: str | None, code: str | None) -> bool:
        """Whether (system, code) is a member of the value set with this canonical URL."""
        members = self.value_sets.get(value_set)
        if members is None:
            raise TerminologyError(f"unknown value set {value_set}")
        return (system or "", code or "") in members

    def codes(self, value_set: str) -> frozenset[str]:
        """The bare codes of a value set (for single-system sets such as countries)."""
        return frozenset(code for _system, code in self.value_sets.get(value_set, frozenset()))

    def concept_for(self, system: str | None, code: str | None) -> TestConcept | None:
        """The test concept an Observation.code coding stands for, if it is in exam-test-code."""
        if not self.in_value_set(EXAM_TEST_CODE_VS, system, code):
            return None
        if system == LOINC:
            return self.concept_by_loinc.get(code or "")
        if system == EXAM_TEST_SYSTEM:
            return self.concepts.get(code or "")
        return None

    def outcome(self, system: str | None, code: str | None) -> str | None:
        """Normalised outcome of a coded result (positive, negative, indeterminate, normal, ...)."""
        return self.outcomes.get((system or "", code or ""))

    def is_country(self, code: str | None) -> bool:
        """Whether code is an officially assigned ISO 3166-1 alpha-2 code."""
        return self.in_value_set(COUNTRY_VS, ISO_3166, code)


def load_terminology(profiles_dir: Path | None = None) -> Terminology:
    """Load (once per directory) our terminology from fhir_profiles/."""
    return _load(Path(profiles_dir or DEFAULT_PROFILES_DIR).resolve())


@functools.lru_cache(maxsize=4)
def _load(profiles_dir: Path) -> Terminology:
    resources = _read_resources(profiles_dir)
    code_systems = {r["url"]: r for r in resources if r.get("resourceType") == "CodeSystem"}
    value_sets: dict[str, frozenset[tuple[str, str]]] = {}
    displays: dict[tuple[str, str], str] = {}
    for code_system in code_systems.values():
        for concept in _concepts(code_system):
            displays[(code_system["url"], concept["code"])] = concept.get(
                "display", concept["code"]
            )
    for value_set in (r for r in resources if r.get("resourceType") == "ValueSet"):
        members: set[tuple[str, str]] = set()
        for include in value_set.get("compose", {}).get("include", []):
            system = include["system"]
            if "concept" in include:
                for concept in include["concept"]:
                    members.add((system, concept["code"]))
                    if "display" in concept:
                        displays.setdefault((system, concept["code"]), concept["display"])
            elif system in code_systems:
                members.update((system, c["code"]) for c in _concepts(code_systems[system]))
            else:
                raise TerminologyError(
                    f"{value_set['url']} includes all of {system}, which we do not hold"
                )
        value_sets[value_set["url"]] = frozenset(members)

    exam_test = code_systems.get(EXAM_TEST_SYSTEM)
    if exam_test is None:
        raise TerminologyError(f"{EXAM_TEST_SYSTEM} is missing from {profiles_dir}")
    concepts: dict[str, TestConcept] = {}
    concept_by_loinc: dict[str, TestConcept] = {}
    for raw_concept in _concepts(exam_test):
        properties = raw_concept.get("property", [])
        loinc_codes = tuple(p["valueCode"] for p in properties if p["code"] == "loinc")
        result_vs = next(
            (p["valueString"] for p in properties if p["code"] == "result-value-set"), None
        )
        if result_vs is None or result_vs not in value_sets:
            raise TerminologyError(f"exam-test {raw_concept['code']} has no known result value set")
        key = raw_concept["code"]
        test = TestConcept(key, raw_concept.get("display", key), loinc_codes, result_vs)
        concepts[key] = test
        for code in loinc_codes:
            if code in concept_by_loinc:
                raise TerminologyError(f"LOINC {code} is mapped to two exam-test concepts")
            concept_by_loinc[code] = test

    outcomes: dict[tuple[str, str], str] = {}
    concept_map = next((r for r in resources if r.get("url") == RESULT_OUTCOME_MAP), None)
    if concept_map is None:
        raise TerminologyError(f"{RESULT_OUTCOME_MAP} is missing from {profiles_dir}")
    for group in concept_map.get("group", []):
        for element in group.get("element", []):
            targets = element.get("target", [])
            if len(targets) != 1:
                raise TerminologyError(
                    f"{group['source']}#{element['code']} must map to one outcome"
                )
            outcomes[(group["source"], element["code"])] = targets[0]["code"]

    return Terminology(value_sets, concepts, concept_by_loinc, outcomes, displays)


def _read_resources(profiles_dir: Path) -> list[dict[str, Any]]:
    if not profiles_dir.is_dir():
        raise TerminologyError(f"profiles directory {profiles_dir} does not exist")
    resources = []
    # Only the top level: rulesets/, measures/ and examples/ hold other kinds of files.
    for path in sorted(profiles_dir.glob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TerminologyError(f"cannot read {path.name}: {exc}") from exc
        if isinstance(resource, dict) and resource.get("resourceType") in {
            "CodeSystem",
            "ValueSet",
            "ConceptMap",
        }:
            resources.append(resource)
    return resources


def _concepts(code_system: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a CodeSystem's concept hierarchy."""
    flat: list[dict[str, Any]] = []
    pending = list(code_system.get("concept", []))
    while pending:
        concept = pending.pop(0)
        flat.append(concept)
        pending.extend(concept.get("concept", []))
    return flat

"""Our terminology in fhir_profiles/ loads, holds the contract's test keys, and is documented."""

from __future__ import annotations

import json
import shutil

import pytest

from registry.fhir.terminology import (
    EXAM_TEST_CODE_VS,
    EXAM_TEST_SYSTEM,
    LOINC,
    SNOMED,
    TerminologyError,
    load_terminology,
)
from registry.fhir.validation import parse_examination_bundle
from tests.fhir.fhir_support import EXAMPLES_DIR, PROFILES_DIR

CONTRACT_KEYS = [
    "chest-xray",
    "tb-naa",
    "tb-rif-resistance",
    "sputum-smear",
    "sputum-culture",
    "igra",
    "hiv-screening",
    "hiv-confirmation",
    "syphilis-nontreponemal",
    "syphilis-treponemal",
    "hbsag",
    "hcv-ab",
    "leprosy-clinical",
    "drug-screening",
    "psychiatric-exam",
]
CLINICAL_KEYS = {"leprosy-clinical", "drug-screening", "psychiatric-exam"}
VERIFICATION_URL = "https://exam-registry.org/fhir/StructureDefinition/verification-source"


def test_exam_test_concepts_are_exactly_the_contract_keys():
    terms = load_terminology()

    assert list(terms.concepts) == CONTRACT_KEYS
    for key in CLINICAL_KEYS:
        assert terms.concepts[key].loinc_codes == ()
        assert terms.concept_for(EXAM_TEST_SYSTEM, key) is terms.concepts[key]
    for key in set(CONTRACT_KEYS) - CLINICAL_KEYS:
        assert terms.concepts[key].loinc_codes
        for code in terms.concepts[key].loinc_codes:
            assert terms.concept_for(LOINC, code) is terms.concepts[key]


@pytest.mark.parametrize(
    ("system", "code", "outcome"),
    [
        (SNOMED, "10828004", "positive"),
        (SNOMED, "260385009", "negative"),
        (SNOMED, "260373001", "positive"),
        (SNOMED, "260415000", "negative"),
        (SNOMED, "11214006", "positive"),
        (SNOMED, "131194007", "negative"),
        (SNOMED, "82334004", "indeterminate"),
        (
            "https://exam-registry.org/fhir/CodeSystem/chest-xray-finding",
            "abnormal-suggestive-of-tb",
            "abnormal-tb",
        ),
        (
            "https://exam-registry.org/fhir/CodeSystem/chest-xray-finding",
            "abnormal-other",
            "abnormal-other",
        ),
        ("https://exam-registry.org/fhir/CodeSystem/clinical-finding", "present", "positive"),
        ("https://exam-registry.org/fhir/CodeSystem/clinical-finding", "absent", "negative"),
    ],
)
def test_results_normalise_to_the_contract_outcomes(system, code, outcome):
    assert load_terminology().outcome(system, code) == outcome


def test_countries_are_the_assigned_iso_codes():
    terms = load_terminology()

    assert len(terms.codes("https://exam-registry.org/fhir/ValueSet/iso3166-alpha2")) == 249
    assert all(terms.is_country(code) for code in ["KG", "TJ", "UZ", "TM", "KZ", "RU"])
    assert not any(terms.is_country(code) for code in ["XK", "EU", "kz", "KAZ", "", None])


def test_terminology_is_loaded_once_per_directory():
    assert load_terminology() is load_terminology(PROFILES_DIR)


def test_every_external_code_records_how_it_was_verified():
    value_sets = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in PROFILES_DIR.glob("ValueSet-*.json")
    ]
    external = [
        (include["system"], concept)
        for value_set in value_sets
        for include in value_set["compose"]["include"]
        if include["system"] in {LOINC, SNOMED}
        for concept in include.get("concept", [])
    ]
    assert external
    terminology_md = (PROFILES_DIR / "TERMINOLOGY.md").read_text(encoding="utf-8")
    for _system, concept in external:
        [verification] = [
            ext for ext in concept.get("extension", []) if ext["url"] == VERIFICATION_URL
        ]
        parts = {
            part["url"]: next(v for k, v in part.items() if k.startswith("value"))
            for part in verification["extension"]
        }
        assert parts["status"] in {"verified-publisher", "corroborated-secondary", "unverified"}
        assert parts["note"]
        assert f"| {concept['code']} |" in terminology_md, concept["code"]


def test_example_codes_are_all_members_of_our_value_sets():
    terms = load_terminology()
    for path in EXAMPLES_DIR.glob("valid-*.json"):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Observation":
                [coding] = resource["code"]["coding"]
                assert terms.in_value_set(EXAM_TEST_CODE_VS, coding["system"], coding["code"]), (
                    coding
                )


def test_profiles_directory_can_be_overridden(tmp_path):
    for path in PROFILES_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)

    terms = load_terminology(tmp_path)

    assert list(terms.concepts) == CONTRACT_KEYS


def test_a_broken_profiles_directory_is_a_deployment_fault_not_a_bad_request(tmp_path):
    for path in PROFILES_DIR.glob("*.json"):
        if path.name != "CodeSystem-exam-test.json":
            shutil.copy(path, tmp_path / path.name)

    with pytest.raises(TerminologyError):
        parse_examination_bundle(b"{}", profiles_dir=tmp_path)

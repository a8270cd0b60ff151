"""The example bundles in fhir_profiles/examples parse, or fail, exactly as documented."""

from __future__ import annotations

import copy
import datetime
import json

import pytest

from registry.errors import InvalidResource
from registry.fhir import (
    DocumentData,
    ReferralData,
    SignatureData,
    TestResultData,
    parse_examination_bundle,
    strip_signature,
)
from tests.fhir.fhir_support import EXAMPLE_TODAY, EXAMPLES_DIR, INVALID_DIR, load_example

MANIFEST = json.loads((INVALID_DIR / "manifest.json").read_text(encoding="utf-8"))
CLINIC_SIGNATURE_TYPE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}


def _issues(raw: object, today: datetime.date = EXAMPLE_TODAY) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidResource) as caught:
        parse_examination_bundle(raw, today=today)  # type: ignore[arg-type]
    return [(issue.code, issue.location) for issue in caught.value.issues]


def test_pre_departure_example_gives_every_record_value():
    raw = (EXAMPLES_DIR / "valid-pre-departure.json").read_bytes()

    record = parse_examination_bundle(raw, today=EXAMPLE_TODAY)

    assert record.bundle == json.loads(raw)
    assert (
        record.identifier_system
        == "https://exam-registry.org/fhir/sid/clinic/TJ-DUS-0007/examination"
    )
    assert record.identifier_value == "2025-000418"
    assert record.purpose == "pre-departure"
    assert record.destination == "KZ"
    assert record.examination_date == datetime.date(2025, 3, 10)
    assert record.clinic_id == "TJ-DUS-0007"
    assert record.practitioner_licence == "TJ-MD-20417"
    assert record.practitioner_name == "Dilnoza Nazarova"
    person = record.person
    assert person.family_names == ["Karimov", "Каримов"]
    assert person.given_names == ["Rustam", "Рустам"]
    assert person.patronymic == "Saidovich"
    assert person.sex == "male"
    assert person.birth_date == datetime.date(1991, 3, 14)
    assert person.citizenship == "TJ"
    assert person.documents == [
        DocumentData("passport", "TJ", "401234567", datetime.date(2031, 8, 20))
    ]
    assert person.photo is not None
    assert person.photo.content_type == "image/png"
    assert person.photo.data.startswith(b"\x89PNG\r\n")
    assert person.display_name == "Rustam Karimov"
    assert record.consent_given is True
    assert record.consent_allows_history is True
    assert record.results == [
        TestResultData("chest-xray", "36643-5", "normal", datetime.date(2025, 3, 10)),
        TestResultData("hiv-screening", "80387-4", "negative", datetime.date(2025, 3, 10)),
        TestResultData("syphilis-nontreponemal", "20507-0", "negative", datetime.date(2025, 3, 11)),
        TestResultData("hbsag", "75410-1", "negative", datetime.date(2025, 3, 10)),
        TestResultData("hcv-ab", "13955-0", "negative", datetime.date(2025, 3, 11)),
        TestResultData("leprosy-clinical", "", "negative", datetime.date(2025, 3, 10)),
        TestResultData("drug-screening", "", "negative", datetime.date(2025, 3, 10)),
        TestResultData("psychiatric-exam", "", "negative", datetime.date(2025, 3, 10)),
    ]
    assert record.referrals == []
    assert record.previous_examination is None
    assert record.signature is None


def test_return_example_links_earlier_examination_and_refers_to_aids_centre():
    record = parse_examination_bundle(load_example("valid-return.json"), today=EXAMPLE_TODAY)

    assert record.purpose == "return"
    assert record.destination is None
    assert record.previous_examination == "EX-7F3K9QPX2M"
    assert record.clinic_id == "KG-BIS-0003"
    assert record.examination_date == datetime.date(2025, 4, 15)
    assert record.person.sex == "female"
    assert record.person.family_names == ["Asanova", "Асанова"]
    assert record.person.patronymic == "Bakytovna"
    assert record.person.display_name == "Aizhan Asanova"
    assert record.person.documents == [
        DocumentData("passport", "KG", "AC1234567", datetime.date(2029, 2, 11)),
        DocumentData("id-card", "KG", "ID0456789", datetime.date(2032, 5, 30)),
    ]
    assert record.person.photo is None
    assert [(r.concept, r.loinc, r.outcome) for r in record.results] == [
        ("chest-xray", "36554-4", "normal"),
        ("hiv-screening", "31201-7", "positive"),
        ("hiv-confirmation", "80203-3", "positive"),
        ("syphilis-treponemal", "24110-9", "negative"),
    ]
    assert record.referrals == [
        ReferralData(
            "hiv-confirmed",
            "KG-BIS-0101",
            "Referred to the Republican AIDS Centre for counselling and antiretroviral treatment.",
        )
    ]
    assert record.consent_allows_history is True


def test_in_host_example_normalises_detected_and_chest_xray_findings():
    record = parse_examination_bundle(load_example("valid-in-host.json"), today=EXAMPLE_TODAY)

    assert record.purpose == "in-host"
    assert record.destination == "KZ"
    assert record.clinic_id == "KZ-ALA-0002"
    assert record.person.citizenship == "UZ"
    assert [d.type for d in record.person.documents] == ["passport", "residence-permit"]
    assert [(r.concept, r.outcome) for r in record.results] == [
        ("chest-xray", "abnormal-tb"),
        ("tb-naa", "positive"),
        ("tb-rif-resistance", "negative"),
        ("sputum-smear", "positive"),
        ("igra", "positive"),
        ("hiv-screening", "negative"),
    ]
    assert record.referrals[0].reason == "tb-confirmed"
    assert record.referrals[0].target_facility == "UZ-TAS-0100"
    assert record.consent_given is True
    assert record.consent_allows_history is False


@pytest.mark.parametrize(
    "name", ["valid-pre-departure.json", "valid-return.json", "valid-in-host.json"]
)
def test_valid_examples_pass_against_the_real_clock(name):
    record = parse_examination_bundle((EXAMPLES_DIR / name).read_text(encoding="utf-8"))

    assert record.signature is None


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda case: case["file"])
def test_invalid_example_fails_at_the_documented_location(case):
    today = datetime.date.fromisoformat(case.get("today", MANIFEST["today"]))

    issues = _issues((INVALID_DIR / case["file"]).read_bytes(), today)

    assert (case["code"], case["location"]) in issues


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=lambda case: case["file"])
def test_invalid_example_fails_against_the_real_clock_too(case):
    # a validator run on any day refuses each file, at the documented location
    with pytest.raises(InvalidResource) as caught:
        parse_examination_bundle((INVALID_DIR / case["file"]).read_bytes())
    assert (case["code"], case["location"]) in [(i.code, i.location) for i in caught.value.issues]


def test_manifest_covers_the_rules_every_client_trips_over():
    files = {case["file"] for case in MANIFEST["cases"]}

    assert {
        "invalid-unknown-resource-type.json",
        "invalid-gender-banana.json",
        "invalid-dangling-reference.json",
        "invalid-no-consent.json",
        "invalid-future-examination.json",
        "invalid-two-patients.json",
        "invalid-result-code-system.json",
        "invalid-missing-composition.json",
        "invalid-composition-not-first.json",
        "invalid-observation-no-effective.json",
        "invalid-implausible-age.json",
    } <= files
    assert files == {path.name for path in INVALID_DIR.glob("invalid-*.json")}


def test_examination_in_the_future_is_relative_to_today(pre_departure):
    assert (
        parse_examination_bundle(pre_departure, today=datetime.date(2025, 3, 12)).purpose
        == "pre-departure"
    )

    issues = _issues(pre_departure, datetime.date(2025, 3, 9))

    assert ("invariant", "Bundle.entry[4].resource.period.start") in issues


def test_every_problem_is_reported_not_just_the_first(pre_departure):
    pre_departure["entry"][1]["resource"]["gender"] = "banana"
    pre_departure["entry"][0]["resource"]["status"] = "preliminary"
    del pre_departure["entry"][6]["resource"]["effectiveDateTime"]

    issues = _issues(pre_departure)

    assert ("code-invalid", "Bundle.entry[1].resource.gender") in issues
    assert ("value", "Bundle.entry[0].resource.status") in issues
    assert ("required", "Bundle.entry[6].resource.effectiveDateTime") in issues


def test_dict_input_is_returned_unchanged(pre_departure):
    before = copy.deepcopy(pre_departure)

    record = parse_examination_bundle(pre_departure, today=EXAMPLE_TODAY)

    assert record.bundle is pre_departure
    assert pre_departure == before


def _signed(bundle: dict, **overrides: object) -> dict:
    signature = {
        "type": [CLINIC_SIGNATURE_TYPE],
        "when": "2025-03-12T15:21:00+05:00",
        "who": {"reference": bundle["entry"][2]["fullUrl"]},
        "sigFormat": "application/jose",
        "data": "ZXlKaGJHY2lPaUpGVXpJMU5pSXNJbXRwWkNJNkltc3hJbjAuLnNpZw==",
    }
    signature.update(overrides)
    return {**bundle, "signature": signature}


def test_signature_is_extracted_as_submitted(pre_departure):
    signed = _signed(pre_departure)

    record = parse_examination_bundle(signed, today=EXAMPLE_TODAY)

    assert record.signature == SignatureData(
        when=datetime.datetime(
            2025, 3, 12, 15, 21, tzinfo=datetime.timezone(datetime.timedelta(hours=5))
        ),
        who_reference=pre_departure["entry"][2]["fullUrl"],
        sig_format="application/jose",
        data="ZXlKaGJHY2lPaUpGVXpJMU5pSXNJbXRwWkNJNkltc3hJbjAuLnNpZw==",
    )


def test_signature_by_anyone_but_the_clinic_is_refused(pre_departure):
    signed = _signed(pre_departure, who={"reference": pre_departure["entry"][3]["fullUrl"]})

    issues = _issues(signed)

    assert ("invalid", "Bundle.signature.who.reference") in issues


def test_strip_signature_copies_without_touching_the_original(pre_departure):
    signed = _signed(pre_departure)

    stripped = strip_signature(signed)

    assert "signature" not in stripped
    assert "signature" in signed
    assert stripped == pre_departure


def test_an_examination_without_any_test_result_is_refused(pre_departure):
    pre_departure["entry"] = pre_departure["entry"][:6]
    pre_departure["entry"][0]["resource"]["section"][1]["entry"] = []

    issues = _issues(pre_departure)

    assert issues == [("required", "Bundle.entry")]


def test_a_second_encounter_is_refused(pre_departure):
    encounter = copy.deepcopy(pre_departure["entry"][4])
    encounter["fullUrl"] = "urn:uuid:7a1e0c00-0000-4000-8000-000000000077"
    pre_departure["entry"].append(encounter)

    issues = _issues(pre_departure)

    assert issues == [("invariant", "Bundle.entry[14].resource")]

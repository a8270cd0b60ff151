"""Submitting signed FHIR examination records: accepted once, refused clearly, nothing half-done."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from registry.accreditation import service as accreditation
from registry.accreditation import status as moments
from registry.accreditation.models import Clinic
from registry.audit.models import AuditEvent
from registry.examinations.models import (
    Examination,
    ExaminationVersion,
    Person,
    PersonDocument,
    TestResult,
)
from registry.examinations.persons import open_identity
from registry.examinations.sealed import open_outcome
from tests.bundles import EXAMPLES, body, examination_bundle, signed
from tests.support import OPERATOR, World

pytestmark = (
    pytest.mark.postgres
)  # unique constraints, concurrent writers and text types differ by database

FHIR = "application/fhir+json"
TABLES = (Examination, ExaminationVersion, TestResult, Person, PersonDocument, AuditEvent)


def _post(world: World, bundle: dict[str, Any] | bytes, headers: dict[str, str]):
    data = bundle if isinstance(bundle, bytes) else body(bundle)
    return world.http.post("/api/v1/examinations", data=data, headers=headers, content_type=FHIR)


def _counts(world: World) -> dict[str, int]:
    with world.ctx.db.read_session() as session:
        return {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0
            for t in TABLES
        }


@pytest.fixture
def dushanbe(world: World) -> dict[str, str]:
    """Clinic TJ-DUS-0007 (custodial key) and its bearer headers."""
    world.clinic("TJ-DUS-0007")
    return world.bearer("clinic", clinic_id="TJ-DUS-0007")


def test_unsigned_bundle_is_signed_custodially_and_stored_encrypted(world: World, dushanbe) -> None:
    response = _post(world, examination_bundle(), dushanbe)
    assert response.status_code == 201, response.json
    receipt = response.json
    assert receipt["custodial"] is True
    assert receipt["status"] == "final" and receipt["version"] == 1
    assert receipt["purpose"] == "pre-departure" and receipt["destination"] == "KZ"
    assert response.headers["Location"] == f"/api/v1/examinations/{receipt['id']}"
    with world.ctx.db.read_session() as session:
        examination = session.get(Examination, receipt["id"])
        assert examination is not None
        version = examination.current
        assert len(version.results) == 8
        outcomes = {r.concept: open_outcome(world.ctx.cipher, r) for r in version.results}
        assert outcomes["chest-xray"] == "normal" and outcomes["hiv-screening"] == "negative"
        assert all(b"negative" not in r.sealed_outcome for r in version.results)
        person = session.get(Person, examination.person_id)
        assert person is not None
        assert b"Karimov" not in person.sealed_identity
        identity = open_identity(person, world.ctx.cipher)
        assert identity.family_names[0] == "Karimov"
        assert identity.document_hint == "•••• 4567"
        assert b"Karimov" not in version.sealed_bundle
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "examination.create" in actions


def test_identical_resubmission_returns_the_same_examination(world: World, dushanbe) -> None:
    first = _post(world, examination_bundle(), dushanbe)
    again = _post(world, examination_bundle(), dushanbe)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["created"] is False
    assert _counts(world)["examinations"] == 1


def test_same_identifier_with_other_content_is_409_pointing_to_amendment(
    world: World, dushanbe
) -> None:
    first = _post(world, examination_bundle(), dushanbe).json
    changed = _post(world, examination_bundle(outcomes={"hiv-screening": "positive"}), dushanbe)
    assert changed.status_code == 409
    assert changed.json["amend"] == f"/api/v1/examinations/{first['id']}"
    assert "PUT" in changed.json["message"]


def test_clinic_held_signature_is_verified_and_bundle_returned_byte_for_byte(
    world: World, dushanbe
) -> None:
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    raw = body(signed(examination_bundle(), key, kid))
    created = _post(world, raw, dushanbe)
    assert created.status_code == 201, created.json
    assert created.json["custodial"] is False and created.json["signing_kid"] == kid
    read = world.http.get(created.json["links"]["self"], headers=dushanbe)
    assert read.status_code == 200
    assert read.data == raw
    assert read.mimetype == FHIR
    assert read.headers["ETag"] == f'"{created.json["bundle_sha256"]}"'


def _assert_refused(world: World, response, status: int, needle: str, before: dict) -> None:
    assert response.status_code == status, response.json
    text = json.dumps(response.json)
    assert needle in text, text
    assert _counts(world) == before


def test_result_changed_after_signing_is_refused(world: World, dushanbe) -> None:
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    bundle = signed(examination_bundle(), key, kid)
    hiv = next(e for e in bundle["entry"] if "80387-4" in json.dumps(e["resource"].get("code")))
    effective = hiv["resource"]["effectiveDateTime"]  # one character of the result's time
    hiv["resource"]["effectiveDateTime"] = (
        effective[:15] + str((int(effective[15]) + 1) % 10) + (effective[16:])
    )
    before = _counts(world)
    response = _post(world, bundle, dushanbe)
    _assert_refused(world, response, 422, "signature does not verify", before)
    assert response.json["issue"][0]["expression"] == ["Bundle.signature.data"]


def test_signature_by_another_clinics_key_is_refused(world: World, dushanbe) -> None:
    world.clinic("KG-BIS-0001")
    kid, key = world.clinic_held_key("KG-BIS-0001")
    before = _counts(world)
    response = _post(world, signed(examination_bundle(), key, kid), dushanbe)
    _assert_refused(world, response, 422, "not registered to clinic TJ-DUS-0007", before)


def test_key_compromised_before_signature_time_is_refused(world: World, dushanbe) -> None:
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    with world.ctx.db.unit_of_work() as uow:
        accreditation.change_key_status(
            uow, principal=OPERATOR, kid=kid, status="compromised", reason="laptop stolen"
        )
        uow.commit()
    before = _counts(world)
    response = _post(world, signed(examination_bundle(), key, kid), dushanbe)
    _assert_refused(world, response, 422, f"key {kid} ", before)
    assert "compromised" in response.json["issue"][0]["diagnostics"]


def test_key_compromised_later_still_refuses_backdated_signatures(world: World, dushanbe) -> None:
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    with world.ctx.db.unit_of_work() as uow:
        accreditation.change_key_status(
            uow, principal=OPERATOR, kid=kid, status="compromised", reason="stolen"
        )
        uow.commit()
    backdated = signed(examination_bundle(), key, kid, when=datetime.now(UTC) - timedelta(days=1))
    before = _counts(world)
    response = _post(world, backdated, dushanbe)
    assert response.status_code == 422
    assert _counts(world) == before


@pytest.mark.parametrize("status", ["suspended", "withdrawn"])
def test_suspended_or_withdrawn_clinic_cannot_submit(world: World, dushanbe, status) -> None:
    with world.ctx.db.unit_of_work() as uow:
        accreditation.change_clinic_status(
            uow, principal=OPERATOR, clinic_id="TJ-DUS-0007", status=status, reason="inspection"
        )
        uow.commit()
    before = _counts(world)
    response = _post(world, examination_bundle(), dushanbe)
    _assert_refused(world, response, 403, f"clinic TJ-DUS-0007 is {status}", before)


def test_examination_before_accreditation_is_refused(world: World) -> None:
    world.clinic("TJ-DUS-0007", accredited_from=datetime.now(UTC).date() - timedelta(days=1))
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = _counts(world)
    response = _post(world, examination_bundle(), headers)
    _assert_refused(world, response, 422, "was not accredited on the examination date", before)


def test_purpose_not_permitted_is_refused(world: World) -> None:
    world.clinic("TJ-DUS-0007", purposes=("return",))
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = _counts(world)
    response = _post(world, examination_bundle(), headers)
    _assert_refused(world, response, 422, "not accredited for pre-departure examinations", before)


def test_bundle_of_another_clinic_is_refused(world: World, dushanbe) -> None:
    world.clinic("KG-BIS-0001")
    before = _counts(world)
    response = _post(world, examination_bundle(clinic_id="KG-BIS-0001"), dushanbe)
    _assert_refused(world, response, 422, "is not the submitting clinic TJ-DUS-0007", before)


def _invalid_cases() -> list[dict[str, str]]:
    manifest = json.loads((EXAMPLES / "invalid" / "manifest.json").read_text("utf-8"))
    return [c for c in manifest["cases"] if "future" not in c["file"]]


@pytest.mark.parametrize("case", _invalid_cases(), ids=lambda c: c["file"])
def test_every_invalid_example_is_a_422_naming_its_location(world: World, dushanbe, case) -> None:
    raw = (EXAMPLES / "invalid" / case["file"]).read_bytes()
    before = _counts(world)
    response = _post(world, raw, dushanbe)
    assert response.status_code == 422, (case, response.json)
    locations = [loc for issue in response.json["issue"] for loc in issue.get("expression", [])]
    assert case["location"] in locations, (case, response.json)
    assert _counts(world) == before


def test_examination_dated_tomorrow_is_refused(world: World, dushanbe) -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=2)
    before = _counts(world)
    response = _post(world, examination_bundle(examined_on=tomorrow), dushanbe)
    _assert_refused(world, response, 422, "future", before)


def test_fifty_megabyte_body_is_413(world: World, dushanbe) -> None:
    before = _counts(world)
    response = _post(
        world, b'{"resourceType": "Bundle", "x": "' + b"a" * 50_000_000 + b'"}', dushanbe
    )
    _assert_refused(world, response, 413, "request body exceeds 2097152 bytes", before)


def test_bundle_nested_ten_thousand_levels_is_422(world: World, dushanbe) -> None:
    before = _counts(world)
    response = _post(world, b"[" * 10_000 + b"]" * 10_000, dushanbe)
    _assert_refused(world, response, 422, "nested deeper than", before)


def test_wrong_content_type_is_refused(world: World, dushanbe) -> None:
    response = world.http.post(
        "/api/v1/examinations", data=b"<Bundle/>", headers=dushanbe, content_type="application/xml"
    )
    assert response.status_code == 422
    assert "application/fhir+json" in response.json["issue"][0]["diagnostics"]


def test_amendment_makes_a_new_version_and_keeps_the_old_bytes(world: World, dushanbe) -> None:
    first = _post(world, examination_bundle(), dushanbe).json
    amended = world.http.put(
        first["links"]["amend"],
        headers=dushanbe,
        content_type=FHIR,
        data=body(examination_bundle(outcomes={"syphilis-nontreponemal": "positive"})),
    )
    assert amended.status_code == 200, amended.json
    assert (amended.json["id"], amended.json["version"]) == (first["id"], 2)
    old = world.http.get(f"{first['links']['self']}?version=1", headers=dushanbe)
    assert old.headers["X-Examination-Status"] == "amended"
    assert json.loads(old.data)["signature"]
    with world.ctx.db.read_session() as session:
        statuses = session.scalars(
            select(ExaminationVersion.status).order_by(ExaminationVersion.version)
        ).all()
    assert statuses == ["amended", "final"]


def test_withdrawal_marks_entered_in_error_once(world: World, dushanbe) -> None:
    first = _post(world, examination_bundle(), dushanbe).json
    withdrawn = world.http.post(
        first["links"]["withdraw"], headers=dushanbe, json={"reason": "wrong person examined"}
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json["status"] == "entered-in-error"
    again = world.http.post(first["links"]["withdraw"], headers=dushanbe, json={"reason": "again"})
    assert again.status_code == 409
    amend = world.http.put(
        first["links"]["amend"],
        headers=dushanbe,
        content_type=FHIR,
        data=body(examination_bundle(outcomes={"igra": "positive"})),
    )
    assert amend.status_code == 409


def test_other_clinics_cannot_see_an_examination(world: World, dushanbe) -> None:
    first = _post(world, examination_bundle(), dushanbe).json
    world.clinic("KG-BIS-0001")
    other = world.bearer("clinic", clinic_id="KG-BIS-0001")
    assert world.http.get(first["links"]["self"], headers=other).status_code == 404
    employer = world.bearer("employer")
    assert world.http.get(first["links"]["self"], headers=employer).status_code == 403
    assert world.http.get(first["links"]["self"]).status_code == 401


def test_same_passport_at_two_clinics_is_one_person(world: World, dushanbe) -> None:
    _post(world, examination_bundle(number="A-1"), dushanbe)
    world.clinic("KG-BIS-0001")
    kg = world.bearer("clinic", clinic_id="KG-BIS-0001")
    _post(world, examination_bundle(clinic_id="KG-BIS-0001", number="B-1"), kg)
    _post(world, examination_bundle(number="A-2", passport="409999999"), dushanbe)
    with world.ctx.db.read_session() as session:
        people = session.scalars(
            select(Examination.person_id).order_by(Examination.created_at)
        ).all()
    assert people[0] == people[1] != people[2]


@pytest.mark.committed
def test_twenty_concurrent_identical_submissions_make_one_examination(
    world: World, dushanbe
) -> None:
    raw = body(examination_bundle())

    def submit_once(_: int) -> int:
        client = world.app.test_client()
        return client.post(
            "/api/v1/examinations", data=raw, headers=dushanbe, content_type=FHIR
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(submit_once, range(20)))
    assert statuses == [200] * 19 + [201]
    assert _counts(world)["examinations"] == 1
    assert _counts(world)["examination_versions"] == 1


def test_clinic_status_at_examination_date_uses_history(world: World) -> None:
    world.clinic("TJ-DUS-0007", accredited_from=date(2020, 1, 1))
    with world.ctx.db.read_session() as session:
        clinic = session.get(Clinic, "TJ-DUS-0007")
        assert clinic is not None
        assert moments.accredited_on(clinic, date(2021, 5, 1))
        assert not moments.accredited_on(clinic, date(2019, 12, 31))

"""Clinics: the public list, changes only by the accreditor of the clinic's country, history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from registry.accreditation import service
from registry.accreditation import status as moments
from registry.accreditation.models import Clinic
from registry.crypto.keys import generate_key, private_jwk, public_jwk, thumbprint
from registry.transparency.models import LogEntry
from tests.support import OPERATOR, World

NEW_CLINIC = {
    "id": "TJ-KHU-0003",
    "name": "Khujand Migrant Health Clinic",
    "country": "TJ",
    "city": "Khujand",
    "purposes": ["pre-departure", "return"],
    "accredited_from": "2026-01-01",
    "accredited_until": "2028-12-31",
}


def test_public_list_shows_clinics_with_status_history_and_keys(world: World) -> None:
    world.clinic("TJ-DUS-0007", name="Dushanbe MEC No. 7")
    world.clinic("KG-BIS-0001")
    response = world.http.get("/api/v1/clinics")
    assert response.status_code == 200
    assert [c["id"] for c in response.json] == ["KG-BIS-0001", "TJ-DUS-0007"]
    dushanbe = response.json[1]
    assert dushanbe["name"] == "Dushanbe MEC No. 7"
    assert dushanbe["status"] == "active"
    assert dushanbe["history"][0]["status"] == "active"
    assert dushanbe["keys"][0]["custody"] == "custodial"
    assert "d" not in dushanbe["keys"][0]["public_jwk"]
    only_kg = world.http.get("/api/v1/clinics?country=KG").json
    assert [c["id"] for c in only_kg] == ["KG-BIS-0001"]


def test_accreditor_adds_clinic_of_own_country_only(world: World) -> None:
    tj = world.bearer("accreditor", country="TJ")
    created = world.http.post("/api/v1/clinics", json=NEW_CLINIC, headers=tj)
    assert created.status_code == 201, created.json
    assert created.json["id"] == "TJ-KHU-0003"
    assert created.json["purposes"] == ["pre-departure", "return"]
    kg = world.bearer("accreditor", country="KG")
    refused = world.http.post(
        "/api/v1/clinics", json={**NEW_CLINIC, "id": "TJ-KHU-0004"}, headers=kg
    )
    assert refused.status_code == 403
    assert refused.json["message"] == "a accreditor of KG may not clinic.manage for TJ"


def test_anonymous_and_employer_cannot_change_clinics(world: World) -> None:
    assert world.http.post("/api/v1/clinics", json=NEW_CLINIC).status_code == 401
    employer = world.bearer("employer")
    response = world.http.post("/api/v1/clinics", json=NEW_CLINIC, headers=employer)
    assert response.status_code == 403
    assert response.json["message"] == "the employer role may not clinic.manage"


def test_invalid_clinic_body_names_each_field(world: World) -> None:
    admin = world.bearer("admin")
    response = world.http.post(
        "/api/v1/clinics",
        headers=admin,
        json={**NEW_CLINIC, "id": "bad id", "purposes": ["holiday"], "accredited_from": "soon"},
    )
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    assert set(errors) == {"id", "purposes", "accredited_from"}


def test_suspension_is_dated_and_withdrawal_is_final(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    tj = world.bearer("accreditor", country="TJ")
    suspended = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/status",
        headers=tj,
        json={"status": "suspended", "reason": "inspection"},
    )
    assert suspended.status_code == 200
    assert [h["status"] for h in suspended.json["history"]] == ["active", "suspended"]
    withdrawn = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/status",
        headers=tj,
        json={"status": "withdrawn", "reason": "sold fit results"},
    )
    assert withdrawn.json["status"] == "withdrawn"
    again = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/status",
        headers=tj,
        json={"status": "active", "reason": "appeal"},
    )
    assert again.status_code == 409
    assert "accredit it anew" in again.json["message"]


def test_status_as_of_a_past_moment_follows_the_history(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    start = datetime.now(UTC)
    with world.ctx.db.unit_of_work() as uow:
        service.change_clinic_status(
            uow,
            principal=OPERATOR,
            clinic_id="TJ-DUS-0007",
            status="suspended",
            reason="audit",
            effective_at=start - timedelta(days=2),
        )
        uow.commit()
    with world.ctx.db.read_session() as session:
        clinic = session.get(Clinic, "TJ-DUS-0007")
        assert clinic is not None
        before_window = datetime(2019, 12, 31, tzinfo=UTC)
        assert moments.clinic_status_at(clinic, before_window) == "not-yet-registered"
        assert moments.clinic_status_at(clinic, start - timedelta(days=3)) == "active"
        assert moments.clinic_status_at(clinic, start - timedelta(days=1)) == "suspended"
        assert moments.accreditation_at(clinic, start) == "suspended"


def test_clinic_held_key_registration_refuses_private_material(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    tj = world.bearer("accreditor", country="TJ")
    key = generate_key()
    leaked = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/keys", headers=tj, json={"jwk": private_jwk(key)}
    )
    assert leaked.status_code == 400
    assert "private member 'd'" in leaked.json["message"]
    registered = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/keys", headers=tj, json={"jwk": public_jwk(key)}
    )
    assert registered.status_code == 201
    assert registered.json["kid"] == thumbprint(public_jwk(key))
    assert registered.json["custody"] == "clinic-held"
    rsa_like = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/keys",
        headers=tj,
        json={"jwk": {"kty": "RSA", "n": "abc", "e": "AQAB"}},
    )
    assert rsa_like.status_code == 400
    assert "only EC P-256 keys" in rsa_like.json["message"]


def test_key_compromise_is_recorded_with_its_time(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    with world.ctx.db.read_session() as session:
        created = session.get(Clinic, "TJ-DUS-0007").keys[0]  # type: ignore[union-attr]
        kid, created_at = created.kid, created.created_at
    tj = world.bearer("accreditor", country="TJ")
    when = created_at + timedelta(microseconds=2)
    response = world.http.post(
        f"/api/v1/clinics/TJ-DUS-0007/keys/{kid}/status",
        headers=tj,
        json={"status": "compromised", "reason": "laptop stolen", "effective_at": when.isoformat()},
    )
    assert response.status_code == 200
    assert response.json["status"] == "compromised"
    with world.ctx.db.read_session() as session:
        key = session.get(Clinic, "TJ-DUS-0007").keys[0]  # type: ignore[union-attr]
        assert moments.key_status_at(key, created_at - timedelta(seconds=1)) == "not-yet-registered"
        assert moments.key_status_at(key, when - timedelta(microseconds=1)) == "active"
        assert moments.key_status_at(key, when) == "compromised"
        assert moments.compromised_since(key) == when
        # public in the transparency log, with the time it was compromised from
        bodies = session.scalars(select(LogEntry.body).where(LogEntry.ref == kid)).all()
    statuses = [(b["status"], b["effective_at"]) for b in map(json.loads, bodies)]
    assert statuses == [("active", created_at.isoformat()), ("compromised", when.isoformat())]
    wrong_clinic = world.http.post(
        f"/api/v1/clinics/TJ-KHU-0003/keys/{kid}/status",
        headers=tj,
        json={"status": "retired", "reason": "rotation"},
    )
    assert wrong_clinic.status_code == 404

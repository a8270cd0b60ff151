"""A stored record that does not open is one clear, audited integrity error on every read."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from registry.audit.models import AuditEvent
from registry.examinations.models import ExaminationVersion, Person
from tests.certificates.builders import submit
from tests.support import World
from tests.verification.helpers import publish

AUTHORITY = "/api/v1/authority/examinations/{id}?purpose_of_use=GOV"


@pytest.fixture
def two(world: World) -> tuple[str, str]:
    publish(world)
    first = submit(world, number="INT-1").examination.id
    second = submit(world, number="INT-2", passport="P7654321").examination.id
    return first, second


def _bundle(world: World, examination_id: str) -> bytes:
    with world.ctx.db.read_session() as session:
        return session.scalars(
            select(ExaminationVersion.sealed_bundle).where(
                ExaminationVersion.examination_id == examination_id
            )
        ).one()


def _store_bundle(world: World, examination_id: str, sealed: bytes) -> None:
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(
            update(ExaminationVersion)
            .where(ExaminationVersion.examination_id == examination_id)
            .values(sealed_bundle=sealed)
        )
        uow.commit()


def _failures(world: World) -> list[tuple[str | None, str | None, str]]:
    with world.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "integrity.unreadable")
        ).all()
        return [(e.object_id, e.role, e.outcome) for e in events]


def _assert_integrity_error(response, examination_id: str) -> None:
    assert response.status_code == 500, response.get_data(as_text=True)
    body = response.json
    assert body["error"] == "integrity_error"
    assert f"examination {examination_id}" in body["message"]
    assert "failed its integrity check" in body["message"]
    assert body["object_id"] == examination_id and body["version"] == 1


@pytest.mark.parametrize("damage", ["swapped", "corrupted"])
def test_a_bundle_that_does_not_open_is_an_audited_integrity_error_for_clinic_and_authority(
    world: World, two: tuple[str, str], damage: str
) -> None:
    first, second = two
    original = _bundle(world, first)
    if damage == "swapped":
        _store_bundle(world, first, _bundle(world, second))
    else:
        _store_bundle(world, first, original[:-1] + bytes([original[-1] ^ 1]))
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    _assert_integrity_error(world.http.get(f"/api/v1/examinations/{first}", headers=clinic), first)
    authority = world.bearer("authority", country="KZ")
    _assert_integrity_error(world.http.get(AUTHORITY.format(id=first), headers=authority), first)
    assert _failures(world) == [(first, "clinic", "failure"), (first, "authority", "failure")]
    # the other examination reads as before
    assert world.http.get(f"/api/v1/examinations/{second}", headers=clinic).status_code == 200
    assert world.http.get(AUTHORITY.format(id=second), headers=authority).status_code == 200


def test_a_person_record_that_does_not_open_is_an_integrity_error_too(
    world: World, two: tuple[str, str]
) -> None:
    first, _second = two
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(update(Person).values(sealed_identity=b"\x02" + b"\x00" * 60))
        uow.commit()
    authority = world.bearer("authority", country="KZ")
    response = world.http.get(AUTHORITY.format(id=first), headers=authority)
    assert response.status_code == 500
    assert response.json["error"] == "integrity_error"
    assert "failed its integrity check" in response.json["message"]
    assert _failures(world) == [(None, "authority", "failure")]

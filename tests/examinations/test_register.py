"""A clinic's own examinations: the list and its search, and the annual quota at submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from registry.accreditation.models import Clinic
from registry.audit.models import AuditEvent
from tests.bundles import body, examination_bundle
from tests.support import World

FHIR = "application/fhir+json"


def _submit(world: World, headers: dict[str, str], number: str, **changes: object):
    bundle = examination_bundle(number=number, **changes)  # type: ignore[arg-type]
    return world.http.post(
        "/api/v1/examinations", data=body(bundle), headers=headers, content_type=FHIR
    )


def _set_quota(world: World, clinic_id: str, quota: int | None) -> None:
    with world.ctx.db.unit_of_work() as uow:
        clinic = uow.session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic.annual_quota = quota
        uow.commit()


def test_the_clinic_lists_its_own_examinations_with_holders_and_certificates(
    world: World,
) -> None:
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0001")
    tj = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    kg = world.bearer("clinic", clinic_id="KG-BIS-0001")
    first = _submit(world, tj, "2026-000001", passport="401111111")
    second = _submit(world, tj, "2026-000002", passport="402222222", destination="RU")
    _submit(world, kg, "KG-1", clinic_id="KG-BIS-0001")
    assert first.status_code == second.status_code == 201

    listed = world.http.get("/api/v1/examinations", headers=tj)
    assert listed.status_code == 200, listed.json
    assert listed.json["clinic_id"] == "TJ-DUS-0007"
    assert listed.json["total"] == 2
    numbers = [e["number"] for e in listed.json["entries"]]
    assert sorted(numbers) == ["2026-000001", "2026-000002"]
    entry = next(e for e in listed.json["entries"] if e["number"] == "2026-000002")
    assert entry["holder_name"] == "Rustam Karimov"
    assert entry["birth_date"] == "1991-03-14"
    assert entry["document_hint"] == "•••• 2222"
    assert entry["destination"] == "RU"
    # every destination's ruleset is judged; each one met has its certificate
    issued = {a["destination"]: a["certificate_id"] for a in second.json["assessments"]}
    assert {c["destination"]: c["id"] for c in entry["certificates"]} == issued
    assert sorted(issued) == ["KZ", "RU", "TM"]
    assert listed.json["quota"] == {
        "year": datetime.now(UTC).year,
        "limit": None,
        "used": 2,
        "remaining": None,
    }


def test_search_finds_an_examination_by_number_prefix_or_by_document(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    tj = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    _submit(world, tj, "A-100", passport="401111111")
    _submit(world, tj, "B-200", passport="402222222")
    by_number = world.http.get("/api/v1/examinations?q=A-1", headers=tj).json
    assert [e["number"] for e in by_number["entries"]] == ["A-100"]
    by_document = world.http.get(
        "/api/v1/examinations?q=402222222&document_country=TJ", headers=tj
    ).json
    assert [e["number"] for e in by_document["entries"]] == ["B-200"]
    other_country = world.http.get(
        "/api/v1/examinations?q=402222222&document_country=KG", headers=tj
    ).json
    assert other_country["total"] == 0
    with world.ctx.db.read_session() as session:
        listed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "examination.list")
        ).all()
    assert len(listed) == 3
    assert all(e.object_id == "TJ-DUS-0007" for e in listed)


def test_another_role_cannot_list_examinations(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    refused = world.http.get(
        "/api/v1/examinations", headers=world.bearer("accreditor", country="TJ")
    )
    assert refused.status_code == 403
    assert world.http.get("/api/v1/examinations").status_code == 401


def test_a_used_up_quota_refuses_a_new_examination_with_a_clear_422(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    _set_quota(world, "TJ-DUS-0007", 2)
    tj = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    assert _submit(world, tj, "Q-1", passport="401111111").status_code == 201
    second = _submit(world, tj, "Q-2", passport="402222222")
    assert second.status_code == 201
    refused = _submit(world, tj, "Q-3", passport="403333333")
    assert refused.status_code == 422
    year = (datetime.now(UTC).date() - timedelta(days=3)).year
    assert refused.json["resourceType"] == "OperationOutcome"
    assert refused.json["issue"][0]["diagnostics"] == (
        f"clinic TJ-DUS-0007 has used its annual quota of 2 examinations for {year} "
        "(2 stored); the accreditor of its country can raise it"
    )
    # a replay of a stored examination is no new examination: still answered
    assert _submit(world, tj, "Q-2", passport="402222222").status_code == 200
    # a withdrawn examination gives its place back
    withdrawn = world.http.post(
        f"/api/v1/examinations/{second.json['id']}/withdraw",
        json={"reason": "entered for the wrong person"},
        headers=tj,
    )
    assert withdrawn.status_code == 200
    assert _submit(world, tj, "Q-3", passport="403333333").status_code == 201
    quota = world.http.get("/api/v1/examinations", headers=tj).json["quota"]
    assert (quota["limit"], quota["remaining"]) == (2, 0)


def test_the_quota_counts_the_year_of_the_examination(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    _set_quota(world, "TJ-DUS-0007", 1)
    tj = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    today = datetime.now(UTC).date()
    last_year = today.replace(year=today.year - 1, month=6, day=1)
    assert _submit(world, tj, "Y-1", examined_on=last_year).status_code == 201
    assert _submit(world, tj, "Y-2", passport="402222222").status_code == 201
    assert _submit(world, tj, "Y-3", passport="403333333").status_code == 422

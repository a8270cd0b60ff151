"""The authority view: its own country's required tests with outcomes, a stated purpose, audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from tests.certificates.builders import submit
from tests.support import World
from tests.verification.helpers import publish

PATH = "/api/v1/authority/examinations/{id}?purpose_of_use={purpose}"


@pytest.fixture
def published(world: World) -> World:
    publish(world)
    return world


def _read(world: World, examination_id: str, country: str, purpose: str = "GOV") -> Any:
    headers = world.bearer("authority", country=country)
    return world.http.get(PATH.format(id=examination_id, purpose=purpose), headers=headers)


def test_an_authority_sees_only_its_rulesets_required_tests_with_outcomes(
    published: World,
) -> None:
    submission = submit(published, outcomes={"hiv-screening": "positive"})
    response = _read(published, submission.examination.id, "KZ")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["ruleset"] == {
        "destination": "KZ",
        "version": 1,
        "title": body["ruleset"]["title"],
    }
    # KZ requires a chest X-ray and an HIV test; syphilis, hepatitis and the rest stay sealed
    assert [(t["requirement"], t["concept"], t["outcome"]) for t in body["tests"]] == [
        ("tuberculosis-screening", "chest-xray", "normal"),
        ("hiv-test", "hiv-screening", "positive"),
    ]
    assert body["purpose_of_use"] == "GOV"
    assert body["destination"] == "KZ" and body["purpose"] == "pre-departure"
    assert body["clinic"]["id"] == "TJ-DUS-0007"
    assert body["clinic"]["accreditation_at_examination"] == "active"
    assert body["holder"]["birth_date"] == "1991-03-14"
    assert body["holder"]["document_hint"] == "•••• 4567"
    assert body["signature"]["kid"] == submission.version.signing_kid
    assert [c["id"][:3] for c in body["certificates"]] == ["KZ-"]
    assert response.headers["Cache-Control"] == "no-store"


def test_another_destination_that_certified_the_examination_sees_its_own_tests(
    published: World,
) -> None:
    submission = submit(published)  # fit: certified for KZ, RU and TM
    response = _read(published, submission.examination.id, "RU")
    assert response.status_code == 200, response.json
    concepts = [t["concept"] for t in response.json["tests"]]
    assert concepts == [
        "chest-xray",
        "hiv-screening",
        "syphilis-nontreponemal",
        "leprosy-clinical",
        "drug-screening",
    ]
    assert [c["id"][:3] for c in response.json["certificates"]] == ["RU-"]


def test_an_authority_of_a_country_the_examination_is_not_for_is_refused(
    published: World,
) -> None:
    # HIV-positive: certified for KZ only, so Russia has no claim on it
    submission = submit(published, outcomes={"hiv-screening": "positive"})
    unknown = "EX" + "0" * 24
    for country in ("RU", "TJ"):
        response = _read(published, submission.examination.id, country)
        nothing = _read(published, unknown, country)
        # the same answer as for an examination that does not exist: nothing is confirmed
        assert response.status_code == nothing.status_code == 404, response.json
        assert response.json["error"] == nothing.json["error"] == "not_found"
        assert (
            response.json["message"]
            == f"no examination {submission.examination.id!r} for {country}"
        )
        assert nothing.json["message"] == f"no examination {unknown!r} for {country}"
        assert set(response.json) == set(nothing.json)


def test_the_purpose_of_use_is_required(published: World) -> None:
    submission = submit(published)
    headers = published.bearer("authority", country="KZ")
    base = f"/api/v1/authority/examinations/{submission.examination.id}"
    assert published.http.get(base, headers=headers).status_code == 422
    assert published.http.get(f"{base}?purpose_of_use=x", headers=headers).status_code == 422


@pytest.mark.parametrize("purpose", ["CURIOSITY", "work-permit", "TREAT", "HMARKT", "gov"])
def test_a_purpose_outside_the_authority_codes_is_refused_and_not_audited(
    published: World, purpose: str
) -> None:
    submission = submit(published)
    response = _read(published, submission.examination.id, "KZ", purpose)
    assert response.status_code == 422, response.json
    assert "purpose_of_use" in response.json["errors"]["query"]
    with published.ctx.db.read_session() as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "examination.authority-read")
        ).all()
    assert reads == []


@pytest.mark.parametrize("purpose", ["GOV", "PUBHLTH", "HCOMPL", "HLEGAL", "FRAUD"])
def test_each_documented_purpose_code_is_accepted(published: World, purpose: str) -> None:
    submission = submit(published)
    response = _read(published, submission.examination.id, "KZ", purpose)
    assert response.status_code == 200, response.json
    assert response.json["purpose_of_use"] == purpose


def test_a_role_without_the_permission_gets_403_before_its_query_is_validated(
    published: World,
) -> None:
    submission = submit(published)
    base = f"/api/v1/authority/examinations/{submission.examination.id}"
    for query in ("", "?purpose_of_use=CURIOSITY", "?purpose_of_use=GOV"):
        for role, arguments in (("employer", {}), ("ministry", {"country": "KZ"})):
            headers = published.bearer(role, **arguments)
            response = published.http.get(base + query, headers=headers)
            assert response.status_code == 403, (role, query, response.json)
            assert response.json["message"] == f"the {role} role may not authority.read"


def test_only_an_authority_may_read(published: World) -> None:
    submission = submit(published)
    path = PATH.format(id=submission.examination.id, purpose="GOV")
    assert published.http.get(path).status_code == 401
    for role, arguments in (
        ("employer", {}),
        ("clinic", {"clinic_id": "TJ-DUS-0007"}),
        ("ministry", {"country": "KZ"}),
    ):
        response = published.http.get(path, headers=published.bearer(role, **arguments))
        assert response.status_code == 403, (role, response.json)


def test_an_unknown_examination_is_404(published: World) -> None:
    assert _read(published, "EX" + "0" * 24, "KZ").status_code == 404


def test_every_read_is_audited_with_its_purpose(published: World) -> None:
    submission = submit(published)
    assert _read(published, submission.examination.id, "KZ", "HCOMPL").status_code == 200
    assert _read(published, submission.examination.id, "RU", "GOV").status_code == 200
    with published.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "examination.authority-read")
            .order_by(AuditEvent.id)
        ).all()
    assert [(e.jurisdiction, e.purpose_of_use, e.object_id) for e in events] == [
        ("KZ", "HCOMPL", submission.examination.id),
        ("RU", "GOV", submission.examination.id),
    ]
    assert events[0].detail == {"ruleset": "KZ.v1", "version": 1, "tests": 2}

"""Referrals to origin-country programmes: made by a return examination, followed up by the
facility, flagged when overdue, and counted in surveillance when completed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.config import Settings
from registry.referrals import service
from registry.referrals.models import Referral
from registry.surveillance import service as surveillance
from registry.surveillance.rebuild import rebuild
from tests.bundles import examination_bundle
from tests.certificates.builders import amend, clinic_principal, submit, withdraw
from tests.support import World

pytestmark = pytest.mark.postgres  # overdue referrals are found with date arithmetic in SQL

NOW = datetime.now(UTC)
TODAY = NOW.date()
REFERRING = "TJ-KHU-0003"
FACILITY = "TJ-AID-0001"  # the Republican AIDS Centre, a clinic client of the registry
HIV_REACTIVE = {"hiv-screening": "positive"}


@pytest.fixture
def clinics(world: World) -> World:
    world.clinic(REFERRING, purposes=("pre-departure", "return"))
    world.clinic(FACILITY, purposes=("return",))
    world.clinic("TJ-DUS-0007")
    return world


def _return_bundle(number: str = "KHU-1", referrals=(("hiv-reactive", FACILITY),), **kwargs):
    kwargs.setdefault("outcomes", HIV_REACTIVE)
    return examination_bundle(
        clinic_id=REFERRING, number=number, purpose="return", referrals=referrals, **kwargs
    )


def _totals(world: World) -> tuple[int, int, int]:
    with world.ctx.db.read_session() as session:
        cells = surveillance.counts(session)
    return (
        sum(c["examined"] for c in cells.values()),
        sum(c["referrals-made"] for c in cells.values()),
        sum(c["referrals-completed"] for c in cells.values()),
    )


def _referrals(world: World) -> list[Referral]:
    with world.ctx.db.read_session() as session:
        return list(session.scalars(select(Referral).order_by(Referral.ordinal, Referral.id)))


def _set(world: World, referral_id: str, status: object, clinic_id: str = FACILITY):
    return world.http.post(
        f"/api/v1/referrals/{referral_id}/status",
        json={"status": status},
        headers=world.bearer("clinic", clinic_id=clinic_id),
    )


def test_a_referral_from_request_to_completion_is_followed_up_and_counted(clinics: World) -> None:
    world = clinics
    bundle = _return_bundle(referrals=[("hiv-reactive", FACILITY), ("hepatitis-b", None)])
    submission = submit(world, bundle, clinic_id=REFERRING)
    made = _referrals(world)
    assert [(r.reason, r.facility_id, r.status) for r in made] == [
        ("hiv-reactive", FACILITY, "requested"),
        ("hepatitis-b", None, "requested"),
    ]
    assert all(r.examination_id == submission.examination.id for r in made)
    assert all(r.referring_clinic_id == REFERRING for r in made)
    # only programme referrals (TB, HIV, syphilis) are counted
    assert _totals(world) == (1, 1, 0)

    facility = world.bearer("clinic", clinic_id=FACILITY)
    incoming = world.http.get("/api/v1/referrals", headers=facility).json
    assert incoming["overdue_after_days"] == 30
    assert [(r["id"], r["status"], r["overdue"]) for r in incoming["referrals"]] == [
        (made[0].id, "requested", False)
    ]
    assert incoming["referrals"][0]["person"] is None  # names only in an audited single read
    outgoing = world.http.get(
        "/api/v1/referrals?direction=outgoing", headers=world.bearer("clinic", clinic_id=REFERRING)
    ).json
    assert [r["id"] for r in outgoing["referrals"]] == [made[0].id, made[1].id]

    one = world.http.get(f"/api/v1/referrals/{made[0].id}", headers=facility)
    assert one.status_code == 200
    assert one.json["person"] == {
        "name": "Rustam Karimov",
        "birth_date": "1991-03-14",
        "sex": "male",
        "document_hint": "•••• 4567",
    }
    assert one.json["reason"] == "hiv-reactive" and one.json["open_days"] == 0

    accepted = _set(world, made[0].id, "accepted")
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["status"] == "accepted"
    assert _totals(world) == (1, 1, 0)
    completed = _set(world, made[0].id, "completed")
    assert completed.json["status"] == "completed" and completed.json["open_days"] is None
    assert _totals(world) == (1, 1, 1)
    assert _set(world, made[0].id, "completed").status_code == 200  # a retry changes nothing
    assert _totals(world) == (1, 1, 1)
    reopened = _set(world, made[0].id, "accepted")
    assert reopened.status_code == 409
    assert reopened.json["current_status"] == "completed" and reopened.json["allowed"] == []

    with world.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == made[0].id).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.detail) for e in events] == [
        ("referral.read", {}),
        ("referral.update", {"from": "requested", "to": "accepted"}),
        ("referral.update", {"from": "accepted", "to": "completed"}),
    ]
    assert events[0].purpose_of_use == "continuity-of-care"

    # rebuilding the counts from the stored bundles gives the same numbers
    with world.ctx.db.unit_of_work() as uow:
        rebuild(uow)
        uow.commit()
    assert _totals(world) == (1, 1, 1)

    # an amendment that keeps the referral keeps its follow-up and its count
    kept = _return_bundle(
        referrals=[("hiv-reactive", FACILITY), ("hepatitis-b", None)],
        outcomes={"hiv-screening": "positive", "hbsag": "positive"},
    )
    amend(world, submission.examination.id, kept, clinic_id=REFERRING)
    assert [(r.id, r.status) for r in _referrals(world)] == [
        (made[0].id, "completed"),
        (made[1].id, "requested"),
    ]
    assert _totals(world) == (1, 1, 1)

    # an amendment that drops it revokes it and takes both counts back
    dropped = _return_bundle(referrals=[("hepatitis-b", None)], outcomes={"hbsag": "positive"})
    amend(world, submission.examination.id, dropped, clinic_id=REFERRING)
    assert {r.id: r.status for r in _referrals(world)} == {
        made[0].id: "revoked",
        made[1].id: "requested",
    }
    assert _totals(world) == (1, 0, 0)


def test_only_the_named_facility_updates_and_other_clinics_see_nothing(clinics: World) -> None:
    world = clinics
    submit(world, _return_bundle(), clinic_id=REFERRING)
    referral = _referrals(world)[0]
    refused = _set(world, referral.id, "completed", clinic_id=REFERRING)
    assert refused.status_code == 403
    assert _set(world, referral.id, "completed", clinic_id="TJ-DUS-0007").status_code == 404
    other = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    assert world.http.get(f"/api/v1/referrals/{referral.id}", headers=other).status_code == 404
    assert world.http.get("/api/v1/referrals", headers=other).json["referrals"] == []
    assert _referrals(world)[0].status == "requested"


def test_without_a_named_facility_the_referring_clinic_follows_up(clinics: World) -> None:
    world = clinics
    submit(world, _return_bundle(referrals=[("tb-suspected", None)]), clinic_id=REFERRING)
    referral = _referrals(world)[0]
    assert _set(world, referral.id, "completed", clinic_id=REFERRING).status_code == 200
    assert _totals(world) == (1, 1, 1)


def test_open_referrals_past_the_threshold_are_flagged_and_can_be_lost_then_found(
    clinics: World,
) -> None:
    world = clinics
    forty_days_ago = NOW - timedelta(days=40)
    submit(
        world,
        _return_bundle(number="OLD", examined_on=TODAY - timedelta(days=41)),
        clinic_id=REFERRING,
        now=forty_days_ago,
    )
    submit(world, _return_bundle(number="NEW"), clinic_id=REFERRING)
    old, new = sorted(_referrals(world), key=lambda r: r.created_at)
    facility = world.bearer("clinic", clinic_id=FACILITY)
    flagged = world.http.get("/api/v1/referrals?overdue=true", headers=facility).json["referrals"]
    assert [(r["id"], r["overdue"], r["open_days"]) for r in flagged] == [(old.id, True, 40)]
    fresh = world.http.get("/api/v1/referrals?overdue=false", headers=facility).json["referrals"]
    assert [(r["id"], r["overdue"]) for r in fresh] == [(new.id, False)]

    with world.ctx.db.unit_of_work() as uow:
        patient = service.list_referrals(
            uow, principal=clinic_principal(FACILITY), overdue=True, overdue_days=60
        )
    assert patient == []  # with a 60-day threshold nothing is overdue yet

    assert _set(world, old.id, "lost-to-follow-up").json["overdue"] is False
    listed = world.http.get("/api/v1/referrals?status=lost-to-follow-up", headers=facility).json
    assert [r["id"] for r in listed["referrals"]] == [old.id]
    # the person turned up after all
    assert _set(world, old.id, "accepted").json["status"] == "accepted"


def test_the_overdue_threshold_comes_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path, {"REGISTRY_REFERRAL_OVERDUE_DAYS": "45"})
    assert settings.referral_overdue_days == 45
    assert Settings.from_env(tmp_path, {}).referral_overdue_days == 30


def test_a_withdrawn_examinations_referrals_are_closed(clinics: World) -> None:
    world = clinics
    submission = submit(world, _return_bundle(), clinic_id=REFERRING)
    referral = _referrals(world)[0]
    withdraw(world, submission.examination.id, clinic_id=REFERRING)
    assert _referrals(world)[0].status == "entered-in-error"
    refused = _set(world, referral.id, "completed")
    assert refused.status_code == 409
    assert _totals(world) == (0, 0, 0)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/status", {"status": "done"}),
        ("/status", {"status": "requested"}),
        ("/status", {"status": 3}),
        ("/status", {}),
    ],
)
def test_bad_status_updates_are_refused_clearly(clinics: World, path: str, body: object) -> None:
    world = clinics
    submit(world, _return_bundle(), clinic_id=REFERRING)
    referral = _referrals(world)[0]
    response = world.http.post(
        f"/api/v1/referrals/{referral.id}{path}",
        json=body,
        headers=world.bearer("clinic", clinic_id=FACILITY),
    )
    assert response.status_code == 422
    assert "status" in response.json["errors"]["json"]


@pytest.mark.parametrize("query", ["direction=sideways", "overdue=perhaps", "status=finished"])
def test_bad_referral_queries_are_refused_clearly(clinics: World, query: str) -> None:
    world = clinics
    response = world.http.get(
        f"/api/v1/referrals?{query}", headers=world.bearer("clinic", clinic_id=FACILITY)
    )
    assert response.status_code == 422
    assert query.split("=")[0] in response.json["errors"]["query"]


def test_an_unknown_referral_is_not_found(clinics: World) -> None:
    world = clinics
    assert _set(world, "RFnot-a-referral", "completed").status_code == 404

"""Fraud signals for accreditors: divergent verdicts for one person, and outlier clinics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from tests.certificates.builders import certified, submit
from tests.support import World

pytestmark = pytest.mark.postgres  # signals are aggregate queries

TODAY = datetime.now(UTC).date()
TB = {"chest-xray": "abnormal-tb"}  # no certificate for Kazakhstan


@pytest.fixture
def clinics(world: World) -> World:
    for clinic_id in ("TJ-DUS-0007", "TJ-KHU-0003", "TJ-KUL-0005", "KG-BIS-0001"):
        world.clinic(clinic_id)
    return world


def _signals(world: World, query: str = "", **caller: str):
    caller = caller or {"country": "TJ"}
    return world.http.get(
        f"/api/v1/fraud/signals{query}", headers=world.bearer("accreditor", **caller)
    )


def test_the_same_person_fit_at_one_clinic_and_not_at_another_is_listed(clinics: World) -> None:
    world = clinics
    refused = submit(world, number="A-1", outcomes=TB, examined_on=TODAY - timedelta(days=12))
    bought = submit(
        world, clinic_id="TJ-KHU-0003", number="B-1", examined_on=TODAY - timedelta(days=3)
    )
    assert not certified(refused) and certified(bought)["KZ"]
    # the same person, same verdict, at two clinics: nothing to see
    submit(world, number="A-2", passport="P0000002", examined_on=TODAY - timedelta(days=9))
    submit(world, clinic_id="TJ-KHU-0003", number="B-2", passport="P0000002")
    # different verdicts, but far apart: the person may have been treated in between
    submit(
        world,
        number="A-3",
        passport="P0000003",
        outcomes=TB,
        examined_on=TODAY - timedelta(days=80),
    )
    submit(world, clinic_id="TJ-KHU-0003", number="B-3", passport="P0000003")

    response = _signals(world)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["country"] == "TJ" and body["window_days"] == 30
    [signal] = body["divergent_verdicts"]
    assert signal["destination"] == "KZ" and signal["days_apart"] == 9
    assert [
        (e["id"], e["clinic_id"], e["verdict"], e["purpose"]) for e in signal["examinations"]
    ] == [
        (refused.examination.id, "TJ-DUS-0007", "no-certificate", "pre-departure"),
        (bought.examination.id, "TJ-KHU-0003", "fit", "pre-departure"),
    ]
    # a pseudonym, not the registry's person id, and nothing medical
    assert signal["person_ref"] != refused.examination.person_id
    assert len(signal["person_ref"]) == 16
    assert not {"results", "outcomes", "name", "birth_date"} & set(signal["examinations"][0])
    assert _signals(world).json["divergent_verdicts"][0]["person_ref"] == signal["person_ref"]
    wider = _signals(world, "?window_days=90").json["divergent_verdicts"]
    assert sorted(s["days_apart"] for s in wider) == [9, 77]

    with world.ctx.db.read_session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "fraud.read")).all()
    assert len(events) == 3
    assert events[0].object_id == "TJ" and events[0].detail["divergent_verdicts"] == 1


def test_a_clinic_whose_fit_rate_departs_from_its_peers_is_listed(clinics: World) -> None:
    world = clinics
    day = TODAY - timedelta(days=5)
    plan = {"TJ-DUS-0007": 8, "TJ-KHU-0003": 4, "TJ-KUL-0005": 4}  # fit out of 8 each
    for clinic_id, fit in plan.items():
        for n in range(8):
            submit(
                world,
                clinic_id=clinic_id,
                number=f"{clinic_id}-{n}",
                passport=f"{clinic_id[3:6]}{n:06d}",
                outcomes=None if n < fit else TB,
                examined_on=day,
            )
    strict = _signals(world, "?min_examinations=5").json
    assert strict["z_threshold"] == 3.0 and strict["outlier_clinics"] == []
    listed = _signals(world, "?min_examinations=5&z=2").json["outlier_clinics"]
    assert listed == [
        {
            "clinic_id": "TJ-DUS-0007",
            "country": "TJ",
            "examinations": 8,
            "fit": 8,
            "fit_rate": 1.0,
            "peer_examinations": 16,
            "peer_fit_rate": 0.5,
            "z": 2.45,
            "direction": "higher",
        }
    ]
    # below the minimum number of examinations nothing is judged
    assert _signals(world, "?min_examinations=9&z=2").json["outlier_clinics"] == []
    # Kyrgyzstan's accreditor sees none of it
    kyrgyz = _signals(world, "?min_examinations=5&z=2", country="KG").json
    assert kyrgyz["country"] == "KG" and kyrgyz["outlier_clinics"] == []


def test_an_accreditor_reads_its_own_country_only_and_an_admin_any(clinics: World) -> None:
    world = clinics
    assert _signals(world, "?country=KG").status_code == 403
    assert _signals(world, "?country=TJ").status_code == 200
    admin = world.http.get("/api/v1/fraud/signals?country=KG", headers=world.bearer("admin"))
    assert admin.status_code == 200 and admin.json["country"] == "KG"
    everywhere = world.http.get("/api/v1/fraud/signals", headers=world.bearer("admin"))
    assert everywhere.json["country"] is None


@pytest.mark.parametrize(
    "query",
    [
        "?window_days=0",
        "?window_days=many",
        "?since=yesterday",
        "?country=Tajikistan",
        "?z=0.5",
        "?min_examinations=1",
    ],
)
def test_bad_signal_queries_are_refused_clearly(clinics: World, query: str) -> None:
    response = _signals(clinics, query)
    assert response.status_code == 422
    assert query[1:].split("=")[0] in response.json["errors"]["query"]


def test_a_period_ending_before_it_starts_is_refused(clinics: World) -> None:
    response = _signals(clinics, f"?since={TODAY.isoformat()}&until=2020-01-01")
    assert response.status_code == 400
    assert "since" in response.json["message"]

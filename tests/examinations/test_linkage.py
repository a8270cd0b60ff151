"""One person across clinics and countries: document linkage, proposed matches, history, lookup."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.errors import InvalidResource
from registry.examinations.examples import Migrant
from registry.examinations.models import Examination, Person, ProposedMatch
from registry.examinations.persons import name_skeleton
from tests.certificates.builders import certified, submit, withdraw
from tests.support import World

pytestmark = pytest.mark.postgres  # blind-index lookups and unique constraints differ by database

TODAY = datetime.now(UTC).date()
OLD_PASSPORT = ("passport", "TJ", "401234567")  # the example's passport
NEW_PASSPORT = ("passport", "TJ", "402999888")
DOCUMENT = {"country": "TJ", "number": "401234567"}
BIRTH = "1991-03-14"  # the example person's birth date


@pytest.fixture
def clinics(world: World) -> World:
    world.clinic("TJ-DUS-0007")
    world.clinic("TJ-KHU-0003", purposes=("pre-departure", "return"))
    world.clinic("KZ-ALA-0002", purposes=("in-host", "periodic"))
    return world


def _examination(world: World, examination_id: str) -> Examination:
    with world.ctx.db.read_session() as session:
        examination = session.get(Examination, examination_id)
        assert examination is not None
        return examination


def _audit(world: World, action: str) -> list[AuditEvent]:
    with world.ctx.db.read_session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def _history(world: World, examination_id: str, clinic_id: str, purpose: str | None = "TREAT"):
    query = f"?purpose_of_use={purpose}" if purpose else ""
    return world.http.get(
        f"/api/v1/examinations/{examination_id}/history{query}",
        headers=world.bearer("clinic", clinic_id=clinic_id),
    )


def test_departure_from_tj_work_in_kz_and_return_to_tj_with_a_new_passport_keep_one_history(
    clinics: World,
) -> None:
    world = clinics
    departure = submit(
        world, number="TJ-1", destination="KZ", examined_on=TODAY - timedelta(days=80)
    )
    # in Kazakhstan the consulate issued a new passport; the old one is shown with it
    in_host = submit(
        world,
        clinic_id="KZ-ALA-0002",
        number="KZ-1",
        purpose="in-host",
        examined_on=TODAY - timedelta(days=40),
        documents=[OLD_PASSPORT, NEW_PASSPORT],
    )
    # back home only the new passport is shown, at another Tajik clinic
    back = submit(
        world,
        clinic_id="TJ-KHU-0003",
        number="KHU-1",
        purpose="return",
        examined_on=TODAY - timedelta(days=5),
        documents=[NEW_PASSPORT],
    )
    first, second, third = (
        _examination(world, s.examination.id) for s in (departure, in_host, back)
    )
    assert first.person_id == second.person_id == third.person_id
    assert (first.origin, second.origin, third.origin) == ("TJ", "KZ", "TJ")
    # the return examination references the pre-departure one, not the in-host one
    assert third.previous_examination_id == first.id
    assert third.history_consent is True
    with world.ctx.db.read_session() as session:
        person = session.get(Person, first.person_id)
        assert person is not None
        assert len(person.documents) == 2
        assert session.scalars(select(ProposedMatch)).all() == []

    response = _history(world, third.id, "TJ-KHU-0003", "COC")
    assert response.status_code == 200, response.json
    history = response.json
    assert history["examination_id"] == third.id
    assert history["purpose_of_use"] == "COC"
    earlier = history["earlier"]
    assert [e["id"] for e in earlier] == [second.id, first.id]
    assert [e["clinic"]["id"] for e in earlier] == ["KZ-ALA-0002", "TJ-DUS-0007"]
    assert [e["purpose"] for e in earlier] == ["in-host", "pre-departure"]
    assert [e["linked"] for e in earlier] == [False, True]
    assert earlier[1]["destination"] == "KZ"
    assert earlier[1]["examination_date"] == (TODAY - timedelta(days=80)).isoformat()
    certificate = certified(departure)["KZ"]
    assert {"destination": "KZ", "certificate_id": certificate.id} == {
        k: earlier[1]["certified_for"][0][k] for k in ("destination", "certificate_id")
    }
    # nothing medical: no results, tests or outcomes
    assert not {"results", "tests", "outcome", "observations"} & set(earlier[1])
    events = _audit(world, "examination.history-read")
    assert [(e.object_id, e.purpose_of_use, e.outcome) for e in events] == [
        (third.id, "COC", "success")
    ]
    assert events[0].detail == {"earlier": 2}


def test_earlier_examinations_are_refused_without_the_migrants_consent(clinics: World) -> None:
    world = clinics
    submit(world, number="TJ-1", examined_on=TODAY - timedelta(days=60))
    back = submit(
        world,
        clinic_id="TJ-KHU-0003",
        number="KHU-1",
        purpose="return",
        examined_on=TODAY - timedelta(days=2),
        share_history=False,
    )
    response = _history(world, back.examination.id, "TJ-KHU-0003")
    assert response.status_code == 403
    assert "did not consent" in response.json["message"]
    events = _audit(world, "examination.history-read")
    assert [(e.object_id, e.outcome) for e in events] == [(back.examination.id, "denied")]


def test_only_the_examining_clinic_sees_the_history_and_must_state_a_purpose(
    clinics: World,
) -> None:
    world = clinics
    back = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", purpose="return")
    assert _history(world, back.examination.id, "TJ-DUS-0007").status_code == 404
    assert _history(world, "EXnot-an-examination", "TJ-KHU-0003").status_code == 404
    missing = _history(world, back.examination.id, "TJ-KHU-0003", purpose=None)
    assert missing.status_code == 422
    assert "purpose_of_use" in str(missing.json["errors"])
    assert _audit(world, "examination.history-read") == []


@pytest.mark.parametrize("purpose", ["care", "return-examination", "GOV", "treat", "CURIOSITY"])
def test_a_history_purpose_outside_the_clinic_purpose_of_use_codes_is_refused(
    clinics: World, purpose: str
) -> None:
    world = clinics
    submit(world, number="TJ-1", examined_on=TODAY - timedelta(days=60))
    back = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", purpose="return")
    refused = _history(world, back.examination.id, "TJ-KHU-0003", purpose)
    assert refused.status_code == 422
    assert "TREAT" in str(refused.json["errors"]["query"]["purpose_of_use"])
    assert _audit(world, "examination.history-read") == []


@pytest.mark.parametrize("purpose", ["TREAT", "ETREAT", "COC", "CAREMGT", "PATRQT"])
def test_each_clinic_purpose_of_use_code_reads_the_history_and_is_audited(
    clinics: World, purpose: str
) -> None:
    world = clinics
    submit(world, number="TJ-1", examined_on=TODAY - timedelta(days=60))
    back = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", purpose="return")
    response = _history(world, back.examination.id, "TJ-KHU-0003", purpose)
    assert response.status_code == 200, response.json
    assert response.json["purpose_of_use"] == purpose
    [event] = _audit(world, "examination.history-read")
    assert event.purpose_of_use == purpose


def test_the_history_service_refuses_a_purpose_outside_the_codes(clinics: World) -> None:
    from registry.errors import BadRequest
    from registry.examinations.linkage import examination_history
    from tests.certificates.builders import clinic_principal

    world = clinics
    back = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", purpose="return")
    with (
        world.ctx.db.unit_of_work() as uow,
        pytest.raises(BadRequest, match="purpose_of_use is one of TREAT, ETREAT, COC"),
    ):
        examination_history(
            uow,
            principal=clinic_principal("TJ-KHU-0003"),
            examination_id=back.examination.id,
            purpose_of_use="care",
        )


def test_a_named_previous_examination_of_another_person_is_refused(clinics: World) -> None:
    world = clinics
    other = submit(world, number="TJ-1", passport="999000111")
    with pytest.raises(InvalidResource, match="not an examination of this person"):
        submit(
            world,
            clinic_id="TJ-KHU-0003",
            number="KHU-1",
            purpose="return",
            previous=other.examination.id,
        )


def test_a_return_examination_dated_before_the_one_it_cites_is_refused(clinics: World) -> None:
    world = clinics
    departure = submit(world, number="TJ-1", examined_on=TODAY - timedelta(days=5))
    before = {e.id for e in _all_examinations(world)}
    with pytest.raises(InvalidResource) as refused:
        submit(
            world,
            clinic_id="TJ-KHU-0003",
            number="KHU-1",
            purpose="return",
            examined_on=TODAY - timedelta(days=30),
            previous=departure.examination.id,
        )
    assert refused.value.status == 422
    (issue,) = refused.value.issues
    assert issue.location == "Bundle.entry[0].resource.extension"
    assert issue.diagnostics == (
        f"previous examination {departure.examination.id} is dated "
        f"{(TODAY - timedelta(days=5)).isoformat()}, after this examination "
        f"({(TODAY - timedelta(days=30)).isoformat()}): it cannot precede it"
    )
    assert {e.id for e in _all_examinations(world)} == before
    # the same day, or later, is a return from that trip
    same_day = submit(
        world,
        clinic_id="TJ-KHU-0003",
        number="KHU-2",
        purpose="return",
        examined_on=TODAY - timedelta(days=5),
        previous=departure.examination.id,
    )
    assert same_day.examination.previous_examination_id == departure.examination.id


def _all_examinations(world: World) -> list[Examination]:
    with world.ctx.db.read_session() as session:
        return list(session.scalars(select(Examination)))


# -- the name and birth date fallback proposes, never merges ---------------------------------

KARIMOV_CYRILLIC_ONLY = Migrant(
    family=("Каримов", "Каримов"),
    given=("Рустам", "Рустам"),
    patronymic=None,
    sex="male",
    birth_date=date(1991, 3, 14),
    passport="P7770001",
    citizenship="TJ",
)


def test_same_name_variant_and_birth_date_without_a_shared_document_is_only_proposed(
    clinics: World,
) -> None:
    world = clinics
    first = submit(world, number="TJ-1")  # Karimov / Каримов Rustam, 1991-03-14
    second = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", migrant=KARIMOV_CYRILLIC_ONLY)
    a, b = (_examination(world, s.examination.id) for s in (first, second))
    assert a.person_id != b.person_id  # never merged on a name
    with world.ctx.db.read_session() as session:
        proposals = session.scalars(select(ProposedMatch)).all()
        assert [(p.person_id, p.candidate_id, p.basis, p.status) for p in proposals] == [
            (b.person_id, a.person_id, "name-birth", "proposed")
        ]
        assert proposals[0].examination_id == b.id


def test_a_twin_with_another_given_name_is_not_proposed(clinics: World) -> None:
    world = clinics
    submit(world, number="TJ-1")
    twin = Migrant(
        family=("Karimov", "Каримов"),
        given=("Farrukh", "Фаррух"),
        patronymic=None,
        sex="male",
        birth_date=date(1991, 3, 14),
        passport="P7770002",
        citizenship="TJ",
    )
    submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", migrant=twin)
    with world.ctx.db.read_session() as session:
        assert session.scalars(select(ProposedMatch)).all() == []


def test_documents_of_two_registered_persons_in_one_bundle_are_proposed_for_review(
    clinics: World,
) -> None:
    world = clinics
    first = submit(world, number="TJ-1")
    other = Migrant(
        family=("Saidov", "Саидов"),
        given=("Olim", "Олим"),
        patronymic=None,
        sex="male",
        birth_date=date(1985, 1, 1),
        passport="P5550001",
        citizenship="TJ",
    )
    second = submit(world, number="TJ-2", migrant=other)
    third = submit(
        world,
        clinic_id="TJ-KHU-0003",
        number="KHU-1",
        documents=[OLD_PASSPORT, ("passport", "TJ", "P5550001")],
    )
    a, b, c = (_examination(world, s.examination.id) for s in (first, second, third))
    assert c.person_id == a.person_id  # the first document seen wins; nothing is merged
    with world.ctx.db.read_session() as session:
        proposals = session.scalars(select(ProposedMatch)).all()
        assert [(p.person_id, p.candidate_id, p.basis) for p in proposals] == [
            (a.person_id, b.person_id, "shared-document")
        ]


def test_a_known_document_with_another_birth_date_registers_a_new_person_for_review(
    clinics: World,
) -> None:
    from registry.examinations.persons import open_identity

    world = clinics
    first = submit(world, number="TJ-1")  # Karimov Rustam, 1991-03-14, passport 401234567
    mistyped = Migrant(
        family=("Nazarova", "Назарова"),
        given=("Malika", "Малика"),
        patronymic=None,
        sex="female",
        birth_date=date(1994, 7, 2),
        passport="401234567",  # someone else's number, typed by mistake
        citizenship="TJ",
    )
    second = submit(world, clinic_id="TJ-KHU-0003", number="KHU-1", migrant=mistyped)
    a, b = (_examination(world, s.examination.id) for s in (first, second))
    assert a.person_id != b.person_id  # not joined to the passport's holder
    with world.ctx.db.read_session() as session:
        holder = session.get(Person, a.person_id)
        assert holder is not None
        kept = open_identity(holder, world.ctx.cipher)
        assert (kept.birth_date, kept.family_names[0]) == (date(1991, 3, 14), "Karimov")
        proposals = session.scalars(select(ProposedMatch)).all()
        assert [(p.person_id, p.candidate_id, p.basis) for p in proposals] == [
            (b.person_id, a.person_id, "document-other-birth-date")
        ]
    # the passport's holder, examined again, still finds the one history
    third = submit(world, number="TJ-2")
    assert _examination(world, third.examination.id).person_id == a.person_id


@pytest.mark.parametrize(
    ("spellings", "skeleton"),
    [
        (("Каримов", "Karimov", "Qarimov"), "karimov"),
        (("Жумабаев", "Zhumabaev", "Jumabaev", "Djumabaev"), "jumabaev"),
        (("Ходжаев", "Khodjaev", "Xo‘jayev"), "hojaev"),
        (("Юсупов", "Yusupov"), "usupov"),
        (("Ғафуров", "Gafurov", "G‘afurov"), "gafurov"),
    ],
)
def test_name_skeletons_survive_transliteration(spellings: tuple[str, ...], skeleton: str) -> None:
    assert {name_skeleton(s) for s in spellings} == {skeleton}


def test_name_skeletons_keep_the_feminine_form_apart() -> None:
    assert name_skeleton("Karimova") != name_skeleton("Karimov")


# -- has this person a valid certificate already? ---------------------------------------------


def _lookup(world: World, body: Any, headers: dict[str, str]):
    return world.http.post("/api/v1/persons/lookup", json=body, headers=headers)


def test_lookup_tells_a_clinic_the_valid_certificate_and_nothing_medical(clinics: World) -> None:
    world = clinics
    submission = submit(world, number="TJ-1", destination="KZ")
    certificate = certified(submission)["KZ"]
    headers = world.bearer("clinic", clinic_id="TJ-KHU-0003")
    response = _lookup(
        world, {"document": DOCUMENT, "birth_date": BIRTH, "destination": "KZ"}, headers
    )
    assert response.status_code == 200, response.json
    answer = response.json
    assert set(answer) == {"holds_valid_certificate", "destination", "certificates", "checked_at"}
    assert answer["holds_valid_certificate"] is True
    assert answer["destination"] == "KZ"
    assert answer["certificates"] == [
        {
            "id": certificate.id,
            "destination": "KZ",
            "valid_from": certificate.valid_from.isoformat(),
            "valid_until": certificate.valid_until.isoformat(),
        }
    ]
    events = _audit(world, "person.lookup")
    assert len(events) == 1
    assert events[0].object_id == submission.examination.person_id
    assert events[0].detail == {"destination": "KZ", "certificates": [certificate.id]}


@pytest.mark.parametrize(
    "body",
    [
        {"document": DOCUMENT, "birth_date": "1991-03-15", "destination": "KZ"},  # wrong birth
        {"document": {"country": "TJ", "number": "000000000"}, "birth_date": BIRTH},  # unknown
        {"document": {"country": "KG", "number": "401234567"}, "birth_date": BIRTH},  # country
        {"document": DOCUMENT, "birth_date": BIRTH, "destination": "UZ"},  # no such certificate
    ],
    ids=["wrong-birth-date", "unknown-document", "other-issuing-country", "other-destination"],
)
def test_lookup_without_a_match_answers_the_same_whatever_the_reason(
    clinics: World, body: dict[str, Any]
) -> None:
    world = clinics
    submit(world, number="TJ-1", destination="KZ")
    response = _lookup(world, body, world.bearer("clinic", clinic_id="TJ-DUS-0007"))
    assert response.status_code == 200
    assert response.json["holds_valid_certificate"] is False
    assert response.json["certificates"] == []
    assert len(_audit(world, "person.lookup")) == 1


def test_lookup_no_longer_finds_a_withdrawn_examinations_certificate(clinics: World) -> None:
    world = clinics
    submission = submit(world, number="TJ-1", destination="KZ")
    withdraw(world, submission.examination.id)
    response = _lookup(
        world,
        {"document": DOCUMENT, "birth_date": BIRTH},
        world.bearer("clinic", clinic_id="TJ-DUS-0007"),
    )
    assert response.json["holds_valid_certificate"] is False


def test_an_authority_looks_up_certificates_for_its_own_country_only(clinics: World) -> None:
    world = clinics
    submission = submit(world, number="TJ-1", destination="KZ")
    headers = world.bearer("authority", country="KZ")
    own = _lookup(world, {"document": DOCUMENT, "birth_date": BIRTH}, headers)
    assert own.status_code == 200
    assert own.json["destination"] == "KZ"
    assert [c["id"] for c in own.json["certificates"]] == [certified(submission)["KZ"].id]
    other = _lookup(
        world, {"document": DOCUMENT, "birth_date": BIRTH, "destination": "RU"}, headers
    )
    assert other.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"document": DOCUMENT, "birth_date": "14.03.1991"},
        {"document": DOCUMENT, "birth_date": 19910314},
        {"document": {"country": "tajikistan", "number": "401234567"}, "birth_date": BIRTH},
        {"document": {"country": "TJ"}, "birth_date": BIRTH},
        {"document": "401234567", "birth_date": BIRTH},
        {"birth_date": BIRTH},
        {"document": DOCUMENT, "birth_date": BIRTH, "destination": "Kazakhstan"},
        [],
    ],
)
def test_lookup_refuses_malformed_requests_clearly(clinics: World, body: Any) -> None:
    world = clinics
    response = _lookup(world, body, world.bearer("clinic", clinic_id="TJ-DUS-0007"))
    assert response.status_code == 422, response.json
    assert response.json["errors"]
    assert _audit(world, "person.lookup") == []

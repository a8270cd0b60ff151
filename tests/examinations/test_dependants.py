"""Dependants (spouses, children) examined and linked to the worker; the rule for minors."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from registry.errors import InvalidResource
from registry.examinations.examples import Migrant
from registry.examinations.models import Examination, Person, PersonRelation
from registry.examinations.persons import open_identity
from registry.fhir import parse_examination_bundle
from registry.surveillance import service as surveillance
from tests.bundles import examination_bundle
from tests.certificates.builders import certified, submit
from tests.fhir.fhir_support import EXAMPLE_TODAY, EXAMPLES_DIR
from tests.support import World

pytestmark = pytest.mark.postgres  # foreign keys and unique constraints differ by database

FATHER = Migrant(
    family=("Karimov", "Каримов"),
    given=("Rustam", "Рустам"),
    patronymic=("Saidovich", "Саидович"),
    sex="male",
    birth_date=date(1991, 3, 14),
    passport="401234567",  # the pre-departure example's person
    citizenship="TJ",
)
DAUGHTER = Migrant(
    family=("Karimova", "Каримова"),
    given=("Madina", "Мадина"),
    patronymic=("Rustamovna", "Рустамовна"),
    sex="female",
    birth_date=date(2016, 5, 10),
    passport="ITJ0123456",
    citizenship="TJ",
)
WIFE = Migrant(
    family=("Karimova", "Каримова"),
    given=("Nigora", "Нигора"),
    patronymic=None,
    sex="female",
    birth_date=date(1993, 8, 1),
    passport="407654321",
    citizenship="TJ",
)
BIRTH_CERTIFICATE = [("birth-certificate", "TJ", "ITJ0123456")]


def _relations(world: World) -> list[PersonRelation]:
    with world.ctx.db.read_session() as session:
        return list(session.scalars(select(PersonRelation).order_by(PersonRelation.id)))


def _person_of(world: World, examination_id: str) -> str:
    with world.ctx.db.read_session() as session:
        examination = session.get(Examination, examination_id)
        assert examination is not None
        return examination.person_id


def test_a_child_examined_with_her_father_is_linked_to_him_and_certified(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    father = submit(world, number="TJ-1", migrant=FATHER, destination="KZ")
    child = submit(
        world,
        number="TJ-2",
        migrant=DAUGHTER,
        documents=BIRTH_CERTIFICATE,
        destination="KZ",
        worker=FATHER,
        relationship="FTH",
    )
    father_id = _person_of(world, father.examination.id)
    child_id = _person_of(world, child.examination.id)
    assert father_id != child_id
    [relation] = _relations(world)
    assert (relation.dependant_id, relation.worker_id, relation.relationship) == (
        child_id,
        father_id,
        "child",
    )
    assert relation.examination_id == child.examination.id
    # the shipped rulesets set no separate rules for minors: the general ones apply
    assert sorted(certified(child)) == sorted(certified(father))
    with world.ctx.db.read_session() as session:
        cells = surveillance.counts(session)
        person = session.get(Person, child_id)
        assert person is not None
        assert open_identity(person, world.ctx.cipher).display_name == "Madina Karimova"
    by_band = {key[5]: counts["examined"] for key, counts in cells.items()}
    assert by_band == {"<18": 1, "30-59": 1}


def test_a_child_examined_first_registers_the_father_whose_own_examination_joins_him(
    world: World,
) -> None:
    world.clinic("TJ-DUS-0007")
    child = submit(
        world, number="TJ-2", migrant=DAUGHTER, documents=BIRTH_CERTIFICATE, worker=FATHER
    )
    [relation] = _relations(world)
    father = submit(world, number="TJ-1", migrant=FATHER)
    assert _person_of(world, father.examination.id) == relation.worker_id
    assert relation.dependant_id == _person_of(world, child.examination.id)
    # examining the child again does not link twice
    submit(world, number="TJ-3", migrant=DAUGHTER, documents=BIRTH_CERTIFICATE, worker=FATHER)
    assert len(_relations(world)) == 1


def test_a_spouse_is_linked_as_a_spouse(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    submit(world, number="TJ-1", migrant=FATHER)
    submit(world, number="TJ-2", migrant=WIFE, worker=FATHER, relationship="SPS")
    assert [r.relationship for r in _relations(world)] == ["spouse"]


def test_a_worker_document_with_another_birth_date_links_nobody(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    submit(world, number="TJ-1", migrant=FATHER)
    impostor = Migrant(**{**FATHER.__dict__, "birth_date": date(1980, 1, 1)})
    submit(world, number="TJ-2", migrant=DAUGHTER, documents=BIRTH_CERTIFICATE, worker=impostor)
    assert _relations(world) == []
    with world.ctx.db.read_session() as session:
        assert len(session.scalars(select(Person)).all()) == 2  # father and child only


def _issues(bundle: dict) -> list[tuple[str, str | None, str]]:
    with pytest.raises(InvalidResource) as caught:
        parse_examination_bundle(json.dumps(bundle).encode())
    return [(i.code, i.location, i.diagnostics) for i in caught.value.issues]


def test_a_minor_is_examined_with_a_parent_or_guardian_named() -> None:
    alone = examination_bundle(migrant=DAUGHTER, documents=BIRTH_CERTIFICATE)
    [(code, location, text)] = _issues(alone)
    assert code == "business-rule"
    assert location == "Bundle.entry[1].resource.birthDate"
    assert "under 18" in text and "parent or guardian" in text
    with_spouse_only = examination_bundle(
        migrant=DAUGHTER, documents=BIRTH_CERTIFICATE, worker=FATHER, relationship="SPS"
    )
    assert [c for c, _l, _t in _issues(with_spouse_only)] == ["business-rule"]
    guardian = examination_bundle(
        migrant=DAUGHTER, documents=BIRTH_CERTIFICATE, worker=FATHER, relationship="GUARD"
    )
    record = parse_examination_bundle(json.dumps(guardian).encode())
    assert [(r.relationship, r.dependant_role) for r in record.related_persons] == [
        ("GUARD", "ward")
    ]


def test_a_related_person_needs_a_known_relationship_a_document_and_the_examined_person() -> None:
    bundle = examination_bundle(migrant=WIFE, worker=FATHER, relationship="FRND")
    related = bundle["entry"][-1]["resource"]
    related["identifier"] = []
    related.pop("birthDate")
    issues = _issues(bundle)
    locations = {(code, location) for code, location, _text in issues}
    assert ("code-invalid", "Bundle.entry[14].resource.relationship") in locations
    assert ("required", "Bundle.entry[14].resource.identifier") in locations
    assert ("required", "Bundle.entry[14].resource.birthDate") in locations


def test_the_dependant_child_example_is_valid() -> None:
    raw = (EXAMPLES_DIR / "valid-dependant-child.json").read_bytes()
    record = parse_examination_bundle(raw, today=EXAMPLE_TODAY)
    assert record.person.display_name == "Madina Karimova"
    assert record.person.birth_date == date(2016, 5, 10)
    [father] = record.related_persons
    assert (father.relationship, father.dependant_role) == ("FTH", "child")
    assert father.person.birth_date == date(1991, 3, 14)
    assert [d.number for d in father.person.documents] == ["401234567"]

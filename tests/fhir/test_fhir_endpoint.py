"""Read-only FHIR: the CapabilityStatement, conformance resources, examination Bundles."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.measure import Measure
from flask import Flask

from tests.bundles import body, examination_bundle
from tests.support import World


@pytest.fixture
def world(app: Flask) -> World:
    return World(app)


def test_metadata_is_a_valid_capability_statement(world: World) -> None:
    response = world.http.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/fhir+json"
    statement = CapabilityStatement.model_validate(response.json)
    assert statement.fhirVersion == "4.3.0"
    served = {r.type for r in statement.rest[0].resource}
    assert served == {
        "Bundle",
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "Measure",
    }


def test_every_measure_is_served_and_found_by_its_canonical_url(world: World) -> None:
    found = world.http.get("/fhir/Measure").json
    bundle = Bundle.model_validate(found)
    assert bundle.type == "searchset" and bundle.total == 9
    ids = {entry.resource.id for entry in bundle.entry}
    assert "hiv-confirmed" in ids
    url = "https://exam-registry.org/fhir/Measure/hiv-confirmed"
    one = world.http.get("/fhir/Measure", query_string={"url": url}).json
    assert one["total"] == 1 and one["entry"][0]["resource"]["url"] == url
    measure = Measure.model_validate(world.http.get("/fhir/Measure/hiv-confirmed").json)
    assert measure.url == url


@pytest.mark.parametrize(
    ("path", "expected_id"),
    [
        ("/fhir/StructureDefinition/examination-bundle", "examination-bundle"),
        ("/fhir/ValueSet/exam-purpose", "exam-purpose"),
        ("/fhir/CodeSystem/exam-test", "exam-test"),
        ("/fhir/ConceptMap/result-outcome", "result-outcome"),
    ],
)
def test_profile_resources_are_read_by_id(world: World, path: str, expected_id: str) -> None:
    response = world.http.get(path)
    assert response.status_code == 200
    assert response.json["id"] == expected_id


@pytest.mark.parametrize(
    "path", ["/fhir/Patient", "/fhir/Patient/1", "/fhir/Measure/no-such-measure"]
)
def test_unknown_types_and_ids_answer_an_operation_outcome(world: World, path: str) -> None:
    response = world.http.get(path)
    assert response.status_code == 404
    assert response.json["resourceType"] == "OperationOutcome"
    assert response.json["issue"][0]["code"] == "not-found"


def test_an_examination_bundle_is_read_by_its_clinic_only(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0001")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    submitted = body(examination_bundle(number="FHIR-READ-1"))
    created = world.http.post(
        "/api/v1/examinations",
        data=submitted,
        headers=headers,
        content_type="application/fhir+json",
    )
    assert created.status_code == 201, created.json
    path = f"/fhir/Bundle/{created.json['id']}"

    mine = world.http.get(path, headers=headers)
    assert mine.status_code == 200
    assert json.loads(mine.data)["identifier"]["value"] == "FHIR-READ-1"
    other = world.http.get(path, headers=world.bearer("clinic", clinic_id="KG-BIS-0001"))
    assert other.status_code == 404
    assert world.http.get(path).status_code == 401
    assert world.http.get(path, headers=world.bearer("employer")).status_code == 403


def test_the_certificate_statement_code_system_defines_every_code_a_card_uses(
    world: World,
) -> None:
    from fhir.resources.R4B.codesystem import CodeSystem

    from registry.certificates import shc

    served = world.http.get("/fhir/CodeSystem", query_string={"url": shc.STATEMENT_SYSTEM}).json
    assert served["total"] == 1
    system = CodeSystem.model_validate(served["entry"][0]["resource"])
    codes = {concept.code for concept in system.concept}
    assert codes == {
        shc.MEETS_REQUIREMENTS,
        shc.DESTINATION_COMPONENT,
        shc.PURPOSE_COMPONENT,
        shc.CLINIC_NAME_COMPONENT,
    }

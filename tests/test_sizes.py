"""Size limits: a streamed body, a client assertion and a name each have a ceiling, said clearly."""

from __future__ import annotations

import io
import json

import pytest

from tests.bundles import body, examination_bundle
from tests.support import World, token_form

LIMIT = 2 * 1024 * 1024  # REGISTRY_MAX_BODY_BYTES by default
STREAMED = {"wsgi.input_terminated": True}  # as gunicorn sets it for a chunked request


def _chunked(world: World, path: str, data: bytes, content_type: str, **headers: str):
    return world.http.post(
        path,
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked", "Content-Type": content_type, **headers},
        environ_overrides=STREAMED,
    )


@pytest.mark.parametrize(
    ("path", "content_type", "role"),
    [
        ("/api/v1/examinations", "application/fhir+json", "clinic"),
        ("/api/v1/clinics", "application/json", "admin"),
        ("/api/v1/verify", "application/json", None),
    ],
)
def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(
    world: World, path: str, content_type: str, role: str | None
) -> None:
    headers = {}
    if role == "clinic":
        world.clinic("TJ-DUS-0007")
        headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    elif role:
        headers = world.bearer(role)
    oversized = b'{"name": "' + b"x" * LIMIT + b'"}'
    response = _chunked(world, path, oversized, content_type, **headers)
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.json["message"] == f"request body exceeds {LIMIT} bytes"


def test_a_chunked_body_within_the_limit_is_read_whole(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = _chunked(
        world,
        "/api/v1/examinations",
        body(examination_bundle()),
        "application/fhir+json",
        **headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert response.json["status"] == "final"


def test_a_client_assertion_over_four_kilobytes_is_refused(world: World) -> None:
    client = world.api_client("employer")
    padded = client.assertion(padding="x" * 1024 * 1024)
    response = world.http.post("/oauth/token", data=token_form(padded))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "invalid_request"
    assert response.json["error_description"] == "client_assertion is longer than 4096 characters"
    ordinary = client.assertion()
    assert len(ordinary) < 1024
    assert world.http.post("/oauth/token", data=token_form(ordinary)).status_code == 200


def _patient(bundle: dict) -> dict:
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


@pytest.mark.parametrize(
    ("change", "where", "text"),
    [
        (lambda n: n.update(family="К" * 101), ".name[0].family", "at most 100 characters"),
        (lambda n: n.update(given=["A" * 101]), ".name[0].given[0]", "at most 100 characters"),
        (lambda n: n.update(given=["Rustam"] * 11), ".name[0].given", "at most 10 given names"),
    ],
    ids=["family", "given", "given-count"],
)
def test_a_name_over_its_limit_is_a_422_naming_it(world: World, change, where, text) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    bundle = examination_bundle()
    change(_patient(bundle)["name"][0])
    response = world.http.post(
        "/api/v1/examinations",
        data=body(bundle),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    issues = [i for i in response.json["issue"] if i["code"] == "too-long"]
    assert len(issues) == 1, json.dumps(response.json)[:500]
    assert issues[0]["expression"][0].endswith(where)
    assert text in issues[0]["diagnostics"]


def test_a_hundred_character_family_name_is_accepted(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    bundle = examination_bundle()
    _patient(bundle)["name"][0]["family"] = "К" * 100
    response = world.http.post(
        "/api/v1/examinations",
        data=body(bundle),
        headers=headers,
        content_type="application/fhir+json",
    )
    assert response.status_code == 201, response.get_data(as_text=True)[:300]

"""A NUL character in any text we accept is a clear 4xx, on PostgreSQL too; no SQL values logged."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from registry.examinations.models import ExaminationVersion
from tests.bundles import body, examination_bundle
from tests.certificates.builders import submit
from tests.support import World, token_form
from tests.verification.helpers import publish

pytestmark = pytest.mark.postgres  # PostgreSQL text refuses U+0000; SQLite stores it

FHIR = "application/fhir+json"


@pytest.fixture
def published(world: World) -> World:
    publish(world)
    return world


def _says_nul(response) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"] == "bad_request"
    assert "NUL character" in response.json["message"]


def test_a_nul_in_the_authority_purpose_of_use_is_a_400(published: World) -> None:
    examination_id = submit(published).examination.id
    headers = published.bearer("authority", country="KZ")
    response = published.http.get(
        f"/api/v1/authority/examinations/{examination_id}?purpose_of_use=ab%00cd", headers=headers
    )
    _says_nul(response)
    assert "query string" in response.json["message"]


def test_a_nul_in_a_path_segment_is_a_400(published: World) -> None:
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = published.http.get("/api/v1/examinations/ab%00cd", headers=headers)
    _says_nul(response)
    assert "path" in response.json["message"]


def test_a_nul_in_a_json_body_is_a_400(published: World) -> None:
    examination_id = submit(published).examination.id
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = published.http.post(
        f"/api/v1/examinations/{examination_id}/withdraw",
        data='{"reason": "x\\u0000y"}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400, response.json
    assert "NUL character" in response.json["message"]
    assert "$.reason" in response.json["message"]
    with published.ctx.db.read_session() as session:  # nothing was withdrawn
        statuses = session.scalars(
            select(ExaminationVersion.status).where(
                ExaminationVersion.examination_id == examination_id
            )
        ).all()
    assert statuses == ["final"]


def test_a_nul_in_a_bundle_is_a_422_naming_where(published: World) -> None:
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    bundle = examination_bundle()
    bundle["identifier"]["value"] = "EX\u00001"
    response = published.http.post(
        "/api/v1/examinations", data=body(bundle), headers=headers, content_type=FHIR
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    issue = response.json["issue"][0]
    assert issue["code"] == "value"
    assert issue["expression"] == ["Bundle.identifier.value"]
    assert "NUL" in issue["diagnostics"]


def test_a_nul_in_a_verification_body_is_a_400(published: World) -> None:
    response = published.http.post(
        "/api/v1/verify",
        data=json.dumps({"certificate_id": "KZ-7F3K\u00009QPX", "birth_date": "1991-03-14"}),
        content_type="application/json",
    )
    _says_nul(response)


def test_a_nul_in_a_form_is_a_400(published: World) -> None:
    api_client = published.api_client("employer")
    form = token_form(api_client.assertion())
    form["scope"] = "verify\x00"
    response = published.http.post("/oauth/token", data=form)
    # the token endpoint answers in OAuth's own error shape (RFC 6749 section 5.2)
    assert response.status_code == 400, response.json
    assert response.json == {
        "error": "invalid_request",
        "error_description": "the NUL character (%00, \\u0000) is not accepted in the form",
    }


def test_a_failed_statement_never_shows_its_parameters(world: World) -> None:
    sentinel = "Ivanov-4567-parameter"
    with pytest.raises(SQLAlchemyError) as raised, world.ctx.db.read_session() as session:
        session.execute(text("SELECT missing FROM no_such_table WHERE x = :p"), {"p": sentinel})
    assert sentinel not in str(raised.value)
    assert "hidden" in str(raised.value)


def test_a_lone_surrogate_in_a_bundle_is_a_422_naming_where(published: World) -> None:
    """ "\\ud800" parses in Python but cannot be encoded, stored or signed: refused up front."""
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    raw = (
        body(examination_bundle())
        .decode()
        .replace('"family":', '"family": "\\ud800",  "x-ignored":', 1)
    )
    response = published.http.post(
        "/api/v1/examinations", data=raw.encode(), headers=headers, content_type=FHIR
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "surrogate" in response.json["issue"][0]["diagnostics"]
    verify = published.http.post(
        "/api/v1/verify", data='{"qr": "shc:/\\udc00"}', content_type="application/json"
    )
    assert verify.status_code == 400 and "surrogate" in verify.json["message"]

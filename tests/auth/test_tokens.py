"""The token endpoint refuses every malformed or hostile client assertion with a clear error."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from registry.crypto.keys import b64url
from tests.support import BASE_URL, World, token_form


def _post(world: World, assertion: str, **extra: str):
    return world.http.post("/oauth/token", data=token_form(assertion, **extra))


def test_valid_assertion_yields_short_lived_es256_token_with_role_scopes(world: World) -> None:
    world.clinic("TJ-DUS-0007")
    client = world.api_client("clinic", clinic_id="TJ-DUS-0007")
    response = _post(world, client.assertion())
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert set(body["scope"].split()) == {
        "examinations.write",
        "examinations.read",
        "certificates.revoke",
        "persons.lookup",
        "referrals.write",
    }
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "ES256"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == client.id and claims["role"] == "clinic"
    assert claims["exp"] - claims["iat"] == 300
    assert response.headers["Cache-Control"] == "no-store"


def test_alg_none_assertion_is_refused(world: World) -> None:
    client = world.api_client("employer")
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(
        json.dumps(
            {
                "iss": client.id,
                "sub": client.id,
                "aud": f"{BASE_URL}/oauth/token",
                "exp": int((datetime.now(UTC) + timedelta(minutes=1)).timestamp()),
                "jti": "x1",
            }
        ).encode()
    )
    response = _post(world, f"{header}.{payload}.")
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "'none' is not allowed" in response.json["error_description"]


def test_hs256_signed_with_the_public_key_as_secret_is_refused(world: World) -> None:
    client = world.api_client("employer")
    public_pem_ish = json.dumps({"kty": "EC", "kid": client.kid}).encode()
    forged = jwt.encode(
        {
            "iss": client.id,
            "sub": client.id,
            "aud": f"{BASE_URL}/oauth/token",
            "exp": int((datetime.now(UTC) + timedelta(minutes=1)).timestamp()),
            "jti": "x2",
        },
        base64.b64encode(public_pem_ish),
        algorithm="HS256",
        headers={"kid": client.kid},
    )
    response = _post(world, forged)
    assert response.status_code == 401
    assert "'HS256' is not allowed" in response.json["error_description"]


def test_expired_assertion_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = _post(world, client.assertion(lifetime=-120))
    assert response.status_code == 401
    assert response.json["error_description"] == "client assertion has expired"


def test_not_yet_valid_assertion_is_refused(world: World) -> None:
    client = world.api_client("employer")
    later = int((datetime.now(UTC) + timedelta(minutes=3)).timestamp())
    response = _post(world, client.assertion(nbf=later))
    assert response.status_code == 401
    assert response.json["error_description"] == "client assertion is not yet valid"


def test_assertion_valid_longer_than_five_minutes_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = _post(world, client.assertion(lifetime=3600))
    assert response.status_code == 401
    assert "at most 5 minutes" in response.json["error_description"]


def test_reused_jti_is_refused_the_second_time(world: World) -> None:
    client = world.api_client("employer")
    assert _post(world, client.assertion(jti="once-only")).status_code == 200
    again = _post(world, client.assertion(jti="once-only"))
    assert again.status_code == 401
    assert again.json["error_description"] == "client assertion jti was already used"


def test_wrong_audience_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = _post(world, client.assertion(aud="https://elsewhere.example/oauth/token"))
    assert response.status_code == 401
    assert response.json["error_description"] == f"assertion aud must be {BASE_URL}/oauth/token"


def test_unknown_client_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = _post(world, client.assertion(iss="nobody", sub="nobody"))
    assert response.status_code == 401
    assert response.json["error_description"] == "unknown client 'nobody'"


def test_unknown_kid_is_refused(world: World) -> None:
    client = world.api_client("employer")
    other = world.api_client("employer")
    forged = jwt.encode(
        {
            "iss": client.id,
            "sub": client.id,
            "aud": f"{BASE_URL}/oauth/token",
            "exp": int((datetime.now(UTC) + timedelta(minutes=1)).timestamp()),
            "jti": "k",
        },
        other.key,
        algorithm="ES256",
        headers={"kid": other.kid},
    )
    response = _post(world, forged)
    assert response.status_code == 401
    assert f"has no registered key '{other.kid}'" in response.json["error_description"]


def test_assertion_signed_by_another_clients_key_under_the_right_kid_fails(world: World) -> None:
    client = world.api_client("employer")
    other = world.api_client("employer")
    forged = jwt.encode(
        {
            "iss": client.id,
            "sub": client.id,
            "aud": f"{BASE_URL}/oauth/token",
            "exp": int((datetime.now(UTC) + timedelta(minutes=1)).timestamp()),
            "jti": "k2",
        },
        other.key,
        algorithm="ES256",
        headers={"kid": client.kid},
    )
    response = _post(world, forged)
    assert response.status_code == 401
    assert "Signature verification failed" in response.json["error_description"]


def test_suspended_clinic_gets_no_token_and_its_live_token_stops_working(world: World) -> None:
    from registry.accreditation import service
    from tests.support import OPERATOR

    world.clinic("TJ-DUS-0007")
    client = world.api_client("clinic", clinic_id="TJ-DUS-0007")
    token = world.token(client)
    with world.ctx.db.unit_of_work() as uow:
        service.change_clinic_status(
            uow,
            principal=OPERATOR,
            clinic_id="TJ-DUS-0007",
            status="suspended",
            reason="inspection pending",
        )
        uow.commit()
    refused = _post(world, client.assertion())
    assert refused.status_code == 401
    assert refused.json["error_description"] == "clinic TJ-DUS-0007 is suspended"
    used = world.http.post(
        "/api/v1/clinics/TJ-DUS-0007/keys",
        json={"jwk": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert used.status_code == 403
    assert used.json["message"] == "clinic TJ-DUS-0007 is suspended; it may not act"


def test_scope_beyond_the_role_is_refused(world: World) -> None:
    client = world.api_client("employer")
    response = _post(world, client.assertion(), scope="verify surveillance.read")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"


def test_wrong_grant_type_and_missing_assertion_say_so(world: World) -> None:
    response = world.http.post("/oauth/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"
    response = world.http.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "header, message",
    [
        ("Basic abc", "the Authorization header must be 'Bearer <access token>'"),
        ("Bearer not-a-jwt", "the access token is not a JWT"),
    ],
)
def test_bad_bearer_headers_get_401_with_reason(world: World, header: str, message: str) -> None:
    response = world.http.post("/api/v1/clinics", json={}, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["message"] == message
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_token_signed_by_a_foreign_key_is_not_accepted(world: World) -> None:
    client = world.api_client("admin")
    forged = jwt.encode(
        {
            "iss": BASE_URL,
            "sub": client.id,
            "aud": BASE_URL,
            "scope": "admin",
            "iat": 0,
            "exp": 2**33,
        },
        client.key,
        algorithm="ES256",
        headers={"kid": client.kid},
    )
    response = world.http.post(
        "/api/v1/clinics", json={}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert response.json["message"] == "the access token was not issued by this registry"

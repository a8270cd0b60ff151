"""The HTTP edge: health, readiness, published keys, OpenAPI, and errors for bad requests."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry import create_app
from tests.support import World


def test_healthz_and_readyz_answer_ok(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["status"] == "ready"
    assert ready.json["checks"] == {"database": "ok", "keys": "ok"}
    # the log's backlog is reported; entries wait for the sequencer without failing readiness
    assert ready.json["log"]["pending"] >= 0


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path, keys_dir) -> None:
    broken = create_app(
        {
            "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "keys_dir": keys_dir,
        },
        create_keys=True,
    )
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "unavailable: OperationalError"
    assert response.headers["Retry-After"] == "5"
    broken.extensions["registry"].db.engine.dispose()


def test_server_refuses_to_start_without_keys_instead_of_making_its_own(tmp_path) -> None:
    from registry.crypto.keys import KeyFormatError

    with pytest.raises(KeyFormatError, match="run `registry init`"):
        create_app({"database_url": "sqlite://", "keys_dir": tmp_path / "empty"})
    assert not (tmp_path / "empty").exists()


def test_jwks_publishes_public_es256_keys_only(app: Flask, client: FlaskClient) -> None:
    keys = client.get("/.well-known/jwks.json").json["keys"]
    assert keys, "the registry publishes at least its certificate key"
    certificate_kids = {k.kid for k in app.extensions["registry"].keystore.keys("certificate")}
    for key in keys:
        # a certificate key announces its revocation list's version (published from day one)
        extra = {"crlVersion"} if key["kid"] in certificate_kids else set()
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"} | extra
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")


def test_private_key_files_are_owner_only(app: Flask) -> None:
    keys_dir = app.extensions["registry"].settings.keys_dir
    private_files = list(keys_dir.rglob("*.private.jwk.json")) + list(keys_dir.glob("*.key"))
    assert len(private_files) >= 6
    assert {oct(p.stat().st_mode & 0o777) for p in private_files} == {"0o600"}


def test_openapi_lists_the_foundation_endpoints(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    assert {"/oauth/token", "/api/v1/clinics", "/healthz", "/readyz"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_405_keeps_the_allow_header(client: FlaskClient) -> None:
    response = client.delete("/api/v1/clinics")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert response.json["error"] == "method_not_allowed"


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert response.headers["X-Request-ID"]


def test_malformed_json_is_400_not_500(world: World) -> None:
    admin = world.bearer("admin")
    response = world.http.post(
        "/api/v1/clinics", data=b'{"id": "TJ-', headers=admin, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["error"] == "bad_request"


def test_deeply_nested_json_is_refused_cleanly(world: World) -> None:
    admin = world.bearer("admin")
    body = b"[" * 10_000 + b"]" * 10_000
    response = world.http.post(
        "/api/v1/clinics", data=body, headers=admin, content_type="application/json"
    )
    assert response.status_code == 400


def test_oversized_body_is_413_with_the_limit(world: World) -> None:
    admin = world.bearer("admin")
    body = b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = world.http.post(
        "/api/v1/clinics", data=body, headers=admin, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["message"] == "request body exceeds 2097152 bytes"


def test_request_id_is_echoed_when_sane_and_replaced_when_not(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert replaced != "<script>" and len(replaced) == 16


@pytest.mark.parametrize("hops, seen", [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_client_address_comes_from_the_trusted_proxy_only(
    database_url: str, keys_dir, hops: int, seen: str
) -> None:
    from flask import request

    app = create_app(
        {"database_url": database_url, "keys_dir": keys_dir, "proxy_hops": hops}, create_keys=True
    )
    app.add_url_rule("/test-address", "test_address", lambda: request.remote_addr or "")
    response = app.test_client().get(
        "/test-address",
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.data.decode() == seen
    app.extensions["registry"].db.engine.dispose()

"""Anonymous reads share one budget per address; callers with a valid token are not counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import registry_app
from tests.support import World

PUBLIC_READS = [
    "/api/v1/clinics",
    "/api/v1/rulesets",
    "/api/v1/trust-list",
    "/.well-known/jwks.json",
    "/.well-known/registry-keys.json",
    "/fhir/metadata",
    "/fhir/Measure/examined",
    "/surveillance",
]


@pytest.fixture
def app(sqlite_url: str, keys_dir: Path) -> Iterator[Flask]:
    with registry_app(sqlite_url, keys_dir, public_rate_limit="8 per minute") as app:
        yield app


def test_public_reads_share_one_budget_per_address(app: Flask) -> None:
    client = app.test_client()
    answers = [client.get(path).status_code for path in PUBLIC_READS]
    assert answers == [200] * 8  # eight different public reads spend one budget of eight
    refused = client.get("/api/v1/clinics")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # another address has its own budget
    other = client.get("/api/v1/clinics", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


def test_a_caller_with_a_valid_token_is_not_counted_as_anonymous(app: Flask) -> None:
    world = World(app)
    headers = world.bearer("employer")
    client = app.test_client()
    for _ in range(8):
        assert client.get("/api/v1/clinics").status_code == 200
    assert client.get("/api/v1/clinics").status_code == 429
    assert client.get("/api/v1/clinics", headers=headers).status_code == 200
    forged = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/clinics", headers=forged).status_code == 429


def test_health_probes_are_never_limited(app: Flask) -> None:
    client = app.test_client()
    for _ in range(10):
        assert client.get("/healthz").status_code == 200

"""Trust list, JWKS, registry keys: built once per data version, same bytes, 304 on a match."""

from __future__ import annotations

import json

import pytest

from registry.crypto import jws
from tests.statements import recorded
from tests.support import World
from tests.verification.helpers import (
    card_of,
    certificate,
    publish,
    publish_and_hold_keys,
    revoke,
)

PUBLISHED = ["/api/v1/trust-list", "/.well-known/jwks.json", "/.well-known/registry-keys.json"]


@pytest.fixture
def published(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    return publish_and_hold_keys(world, monkeypatch)


@pytest.mark.parametrize("path", PUBLISHED)
def test_an_unchanged_document_is_the_same_bytes_and_a_matching_etag_gets_304(
    published: World, path: str
) -> None:
    first = published.http.get(path)
    second = published.http.get(path)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert second.headers["ETag"] == etag
    again = published.http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    weak = published.http.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    other = published.http.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == first.data


def test_the_trust_list_changes_its_version_issued_at_and_etag_only_with_its_data(
    published: World,
) -> None:
    issued = certificate(published, number="VERSIONS-1")
    before = published.http.get("/api/v1/trust-list")
    document = before.json["document"]
    # the list as of its data's last change; the signature over exactly that document
    key = published.ctx.keystore.active("document")
    assert json.loads(jws.verify(before.json["jws"], key.public_key)) == document
    assert document["revocations_as_of"] == document["issued_at"]
    assert (
        published.http.get("/api/v1/trust-list").json["document"]["issued_at"]
        == (document["issued_at"])
    )
    revoke(published, issued.id)
    after = published.http.get(
        "/api/v1/trust-list", headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status_code == 200
    changed = after.json["document"]
    assert changed["list_version"] > document["list_version"]
    assert changed["issued_at"] > document["issued_at"]
    assert after.headers["ETag"] != before.headers["ETag"]
    rids = changed["revocations"][0]["crl"]["rids"]
    assert len(rids) == len(document["revocations"][0]["crl"]["rids"]) + 1


def test_the_jwks_announces_a_new_revocation_lists_version(published: World) -> None:
    issued = certificate(published, number="VERSIONS-2")
    before = published.http.get("/.well-known/jwks.json")
    revoke(published, issued.id)
    after = published.http.get(
        "/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status_code == 200
    kid = jws.read_header(card_of(published, issued))["kid"]
    version_of = {k["kid"]: k["crlVersion"] for k in before.json["keys"]}
    assert {k["kid"]: k["crlVersion"] for k in after.json["keys"]} == {
        **version_of,
        kid: version_of[kid] + 1,
    }


@pytest.mark.committed
def test_a_second_answer_of_the_same_version_reads_one_small_statement(published: World) -> None:
    published.http.get("/api/v1/trust-list")
    with recorded(published.ctx.db.engine) as statements:
        again = published.http.get("/api/v1/trust-list")
    assert again.status_code == 200
    assert sum(statements.tally().values()) == 1


def test_between_rechecks_a_worker_answers_from_memory_without_asking_the_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import registry_app

    keys = tmp_path_factory.mktemp("recheck-keys")
    with registry_app(database_url, keys, published_recheck_seconds=3600) as app:
        world = World(app)
        publish(world)
        issued = certificate(world, number="VERSIONS-3")
        first = world.http.get("/api/v1/trust-list")
        revoke(world, issued.id)
        with recorded(world.ctx.db.engine) as statements:
            held = world.http.get("/api/v1/trust-list")
        assert statements == []
        assert held.data == first.data  # within the interval: the version confirmed last
        world.ctx.db.memo.clear()  # as when the interval is over: the version is asked again
        fresh = world.http.get("/api/v1/trust-list")
        assert fresh.headers["ETag"] != first.headers["ETag"]
        assert fresh.json["document"]["list_version"] > first.json["document"]["list_version"]

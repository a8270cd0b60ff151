"""A compromised registry certificate key: its later cards revoked, re-issued under a new key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask

from registry.certificates import service as certificates
from registry.certificates import shc
from registry.crypto.keys import load_public_jwk
from registry.errors import Conflict
from tests.certificates.builders import certified, load_rulesets, stored, submit
from tests.conftest import registry_app
from tests.support import OPERATOR, World


@pytest.fixture
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # Rotation writes a new key: these tests get an app with a keys folder of its own.
    with registry_app(database_url, tmp_path_factory.mktemp("rotated-keys")) as app:
        load_rulesets(app)
        yield app


@pytest.fixture(autouse=True)
def _published(world: World) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")


def _jwks(world: World) -> dict[str, dict]:
    return {k["kid"]: k for k in world.http.get("/.well-known/jwks.json").json["keys"]}


def _api_card(world: World, certificate_id: str) -> str:
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    response = world.http.get(
        f"/api/v1/certificates/{certificate_id}/card.smart-health-card", headers=headers
    )
    (token,) = shc.read_health_card_file(response.data)
    return token


def test_a_compromised_registry_key_revokes_its_later_cards_and_reissues_them(
    world: World,
) -> None:
    keystore = world.ctx.keystore
    old_kid = keystore.active("certificate").kid
    before = certified(submit(world))
    since = datetime.now(UTC)
    after = certified(submit(world, number="2026-000002"))
    old_cards = {c.id: (c.rid, _api_card(world, c.id)) for c in after.values()}

    with world.ctx.db.unit_of_work() as uow:
        rotation = certificates.rotate_certificate_key(
            uow,
            actor=OPERATOR,
            compromised_since=since,
        )
        uow.commit()
    assert rotation.previous_kid == old_kid and rotation.kid != old_kid
    assert keystore.active("certificate").kid == rotation.kid
    assert sorted(c.id for c in rotation.reissued) == sorted(c.id for c in after.values())

    crl = world.http.get(f"/.well-known/crl/{old_kid}.json").json
    assert crl["ctr"] == 4
    assert {e.partition(".")[0] for e in crl["rids"]} == {rid for rid, _ in old_cards.values()}
    for rid, token in old_cards.values():
        assert shc.rid_revoked(crl, rid=rid, nbf=shc.decode_card(token)[1]["nbf"])
    jwks = _jwks(world)
    assert jwks[old_kid]["crlVersion"] == 4
    assert jwks[rotation.kid]["crlVersion"] == 1  # the new key's list: published, empty
    assert world.http.get(f"/.well-known/crl/{rotation.kid}.json").json["rids"] == []

    new_key = load_public_jwk(jwks[rotation.kid])
    for certificate in after.values():
        now = stored(world, certificate.id)
        assert (now.status, now.kid) == ("valid", rotation.kid)
        assert now.rid != certificate.rid and len(now.cards) == 2
        token = _api_card(world, certificate.id)
        assert shc.decode_card(token)[0]["kid"] == rotation.kid
        payload = shc.verify_card(token, new_key)
        assert payload["vc"]["rid"] == now.rid
        assert shc.read_certificate(payload).certificate_id == certificate.id
    for certificate in before.values():
        now = stored(world, certificate.id)
        assert (now.status, now.kid, len(now.cards)) == ("valid", old_kid, 1)
        token = _api_card(world, certificate.id)
        assert not shc.rid_revoked(crl, rid=now.rid, nbf=shc.decode_card(token)[1]["nbf"])


def test_a_plain_rotation_reissues_nothing(world: World) -> None:
    issued = certified(submit(world))
    with world.ctx.db.unit_of_work() as uow:
        rotation = certificates.rotate_certificate_key(uow, actor=OPERATOR)
        uow.commit()
    assert rotation.reissued == []
    assert all(stored(world, c.id).kid == rotation.previous_kid for c in issued.values())
    later = certified(submit(world, number="2026-000002"))
    assert all(c.kid == rotation.kid for c in later.values())


def test_the_active_key_cannot_be_declared_compromised_before_rotating(world: World) -> None:
    kid = world.ctx.keystore.active("certificate").kid
    with world.ctx.db.unit_of_work() as uow, pytest.raises(Conflict, match="rotate"):
        certificates.revoke_after_key_compromise(
            uow,
            kid=kid,
            since=datetime.now(UTC),
            actor=OPERATOR,
            now=datetime.now(UTC),
            keystore=world.ctx.keystore,
            settings=world.ctx.settings,
        )

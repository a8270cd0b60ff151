"""A compromised registry certificate key: withdrawn, its later cards revoked, every valid
certificate it signed re-issued under a new key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from registry.certificates import service as certificates
from registry.certificates import shc
from registry.certificates.models import CertificateRevocation
from registry.crypto.keys import load_public_jwk
from registry.errors import BadRequest
from registry.events import RegistryKeyChanged
from tests.certificates.builders import certified, load_rulesets, stored, submit
from tests.conftest import registry_app
from tests.support import OPERATOR, World
from tests.verification.helpers import verify


@pytest.fixture
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # Rotation writes a new key: these tests get an app with a keys folder of its own, which
    # reads the key statuses at every use (the refresh interval is tested in test_key_refresh).
    keys = tmp_path_factory.mktemp("rotated-keys")
    with registry_app(database_url, keys, key_refresh_seconds=0) as app:
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


def _key_events(world: World) -> list[RegistryKeyChanged]:
    seen: list[RegistryKeyChanged] = []
    world.ctx.db.bus.handlers[RegistryKeyChanged] = (lambda _uow, event: seen.append(event),)
    return seen


def test_a_compromised_registry_key_is_withdrawn_and_all_its_valid_certificates_reissued(
    world: World,
) -> None:
    keystore = world.ctx.keystore
    old_kid = keystore.active("certificate").kid
    before = certified(submit(world))
    since = datetime.now(UTC)
    after = certified(submit(world, number="2026-000002"))
    old_cards = {c.id: _api_card(world, c.id) for c in [*before.values(), *after.values()]}
    events = _key_events(world)

    with world.ctx.db.unit_of_work() as uow:
        rotation = certificates.rotate_certificate_key(
            uow,
            actor=OPERATOR,
            compromised_since=since,
        )
        uow.commit()
    assert (rotation.previous_kid, rotation.status) == (old_kid, "compromised")
    assert rotation.kid != old_kid
    assert keystore.active("certificate").kid == rotation.kid
    # every valid certificate the key signed, before the compromise too: its key is gone
    reissued = sorted(c.id for c in rotation.reissued)
    assert reissued == sorted(old_cards)
    assert [(e.kid, e.purpose, e.status, e.since) for e in events] == [
        (old_kid, "certificate", "compromised", since),
        (rotation.kid, "certificate", "active", events[1].since),
    ]

    # withdrawn: not in the issuer key set, no revocation list, not among the registry's keys
    jwks = _jwks(world)
    assert old_kid not in jwks
    assert jwks[rotation.kid]["crlVersion"] == 1  # the new key's list: published, empty
    assert world.http.get(f"/.well-known/crl/{old_kid}.json").status_code == 404
    purposes = world.http.get("/.well-known/registry-keys.json").json["keys"]
    assert old_kid not in {k["kid"] for k in purposes}

    # the cards it signed from `since` on are listed as revoked; the earlier ones are not
    with world.ctx.db.reading() as uow:
        listed = set(
            uow.session.scalars(
                select(CertificateRevocation.certificate_id).where(
                    CertificateRevocation.kid == old_kid
                )
            )
        )
    assert listed == {c.id for c in after.values()}

    new_key = load_public_jwk(jwks[rotation.kid])
    for certificate in [*before.values(), *after.values()]:
        now = stored(world, certificate.id)
        assert (now.status, now.kid, len(now.cards)) == ("valid", rotation.kid, 2)
        assert now.rid != certificate.rid
        token = _api_card(world, certificate.id)
        payload = shc.verify_card(token, new_key)
        assert payload["vc"]["rid"] == now.rid
        assert verify(world, {"jws": token})["result"] == "valid"
        old = verify(world, {"jws": old_cards[certificate.id]})
        assert old["result"] == "invalid_signature"
        assert f"key {old_kid} of the registry was compromised" in old["reason"]


def test_a_plain_rotation_retires_the_key_and_reissues_nothing(world: World) -> None:
    issued = certified(submit(world))
    events = _key_events(world)
    with world.ctx.db.unit_of_work() as uow:
        rotation = certificates.rotate_certificate_key(uow, actor=OPERATOR)
        uow.commit()
    assert rotation.reissued == [] and rotation.status == "retired"
    assert [(e.kid, e.status) for e in events] == [
        (rotation.previous_kid, "retired"),
        (rotation.kid, "active"),
    ]
    assert {rotation.previous_kid, rotation.kid} <= set(_jwks(world))
    for certificate in issued.values():
        assert stored(world, certificate.id).kid == rotation.previous_kid
        assert verify(world, {"jws": _api_card(world, certificate.id)})["result"] == "valid"
    later = certified(submit(world, number="2026-000002"))
    assert all(c.kid == rotation.kid for c in later.values())


def test_a_compromise_cannot_start_in_the_future(world: World) -> None:
    kid = world.ctx.keystore.active("certificate").kid
    with world.ctx.db.unit_of_work() as uow, pytest.raises(BadRequest, match="future"):
        certificates.rotate_certificate_key(
            uow, actor=OPERATOR, compromised_since=datetime.now(UTC) + timedelta(hours=1)
        )
    assert world.ctx.keystore.active("certificate").kid == kid

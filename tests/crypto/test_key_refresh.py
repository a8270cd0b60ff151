"""Two workers on one database and keys folder: a key change made through one reaches the
other within its refresh interval, without a restart; a card re-issued under a key the other
has not seen yet verifies there at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import event

from registry import create_app
from registry.certificates import service as certificates
from registry.certificates import shc
from registry.crypto.keys import generate_key, public_jwk, thumbprint
from registry.crypto.keystore import UNKNOWN_KID_GAP_SECONDS
from tests.certificates.builders import certified, load_rulesets, stored, submit
from tests.conftest import registry_app
from tests.support import BASE_URL, OPERATOR, World
from tests.verification.helpers import card_of, verify

pytestmark = pytest.mark.postgres  # workers meet in the database: both databases


@pytest.fixture
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with registry_app(database_url, tmp_path_factory.mktemp("refresh-keys")) as app:
        load_rulesets(app)
        yield app


@pytest.fixture
def other(world: World) -> Iterator[World]:
    """A second worker: another app on the same database and keys folder, never restarted."""
    settings = world.ctx.settings
    second = create_app(
        {"database_url": settings.database_url, "keys_dir": settings.keys_dir, "base_url": BASE_URL}
    )
    try:
        yield World(second)
    finally:
        second.extensions["registry"].db.engine.dispose()


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def _rotate(world: World, since: datetime | None = None) -> certificates.Rotation:
    with world.ctx.db.unit_of_work() as uow:
        rotation = certificates.rotate_certificate_key(uow, actor=OPERATOR, compromised_since=since)
        uow.commit()
    return rotation


def _issuer_kids(world: World) -> set[str]:
    return {k["kid"] for k in world.http.get("/.well-known/jwks.json").json["keys"]}


def test_a_rotation_through_one_worker_reaches_the_other_within_its_refresh_interval(
    world: World, other: World, clock: Any
) -> None:
    world.clinic("TJ-DUS-0007")
    old = other.ctx.keystore.active("certificate").kid
    rotation = _rotate(world)
    assert other.ctx.settings.key_refresh_seconds == 2  # the default
    clock.shift(timedelta(seconds=1.9))
    assert other.ctx.keystore.active("certificate").kid == old  # it has not looked yet
    clock.shift(timedelta(seconds=0.1))
    issued = certified(submit(other))
    assert {c.kid for c in issued.values()} == {rotation.kid}
    assert {old, rotation.kid} <= _issuer_kids(other)
    for certificate in issued.values():
        assert verify(world, {"jws": card_of(other, certificate)})["result"] == "valid"


def test_a_compromised_key_stops_signing_in_the_other_worker_within_seconds(
    world: World, other: World, clock: Any
) -> None:
    world.clinic("TJ-DUS-0007")
    old = other.ctx.keystore.active("certificate").kid
    assert old in _issuer_kids(other)
    rotation = _rotate(world, since=datetime.now(UTC) - timedelta(hours=1))
    clock.shift(timedelta(seconds=other.ctx.settings.key_refresh_seconds))
    assert _issuer_kids(other) == {rotation.kid}
    issued = certified(submit(other))
    assert {c.kid for c in issued.values()} == {rotation.kid}
    keys = other.http.get("/.well-known/registry-keys.json").json["keys"]
    assert old not in {k["kid"] for k in keys}


def test_a_card_reissued_by_one_worker_verifies_at_once_in_the_other(
    world: World, other: World, clock: Any
) -> None:
    world.clinic("TJ-DUS-0007")
    issued = sorted(c.id for c in certified(submit(world)).values())
    old = other.ctx.keystore.active("certificate").kid
    rotation = _rotate(world, since=datetime.now(UTC) - timedelta(hours=1))
    assert sorted(c.id for c in rotation.reissued) == issued
    # the clock has not moved: the other worker's interval has not passed, and yet
    for certificate_id in issued:
        card = card_of(world, stored(world, certificate_id))
        assert shc.decode_card(card)[0]["kid"] == rotation.kid != old
        answer = verify(other, {"jws": card})
        assert (answer["result"], answer["kid"]) == ("valid", rotation.kid)


def test_unknown_kids_make_a_worker_look_again_at_most_once_a_second(
    world: World, other: World, clock: Any
) -> None:
    world.clinic("TJ-DUS-0007")
    card = card_of(world, next(iter(certified(submit(world)).values())))
    _header, payload = shc.decode_card(card)
    other.ctx.keystore.active("certificate")  # loaded
    looks: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "FROM registry_keys" in statement:
            looks.append(statement)

    engine = other.ctx.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):  # cards under kids nobody has: a forger's, or noise
            stranger = generate_key()
            forged = shc.encode_card(payload, stranger, thumbprint(public_jwk(stranger)))
            assert verify(other, {"jws": forged})["result"] == "invalid_signature"
        assert len(looks) == 1
        clock.shift(timedelta(seconds=UNKNOWN_KID_GAP_SECONDS))
        stranger = generate_key()
        verify(other, {"jws": shc.encode_card(payload, stranger, thumbprint(public_jwk(stranger)))})
        assert len(looks) == 2
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_with_its_only_key_compromised_a_worker_answers_503_and_signs_nothing(
    world: World, other: World, clock: Any
) -> None:
    from sqlalchemy import update

    from registry.crypto.models import RegistryKeyRecord

    kid = other.ctx.keystore.active("document").kid
    # another replica marked it compromised and made a key whose file is not here
    with world.ctx.db.unit_of_work() as uow:
        uow.session.execute(
            update(RegistryKeyRecord)
            .where(RegistryKeyRecord.kid == kid)
            .values(status="compromised", changed_at=datetime.now(UTC))
        )
        uow.commit()
    clock.shift(timedelta(seconds=other.ctx.settings.key_refresh_seconds))
    answer = other.http.post("/api/v1/verify", json={"jws": "a.b.c"})
    assert answer.status_code == 503
    assert answer.json["error"] == "signing_key_unavailable"
    assert answer.headers["Retry-After"] == "5"
    ready = other.http.get("/readyz")
    assert ready.status_code == 503 and "no usable document key" in ready.json["checks"]["keys"]

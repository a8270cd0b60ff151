"""Other SMART Health Card issuers: registered by iss and JWKS (and CRL), judged like our own.

The published specification's example cards are the outside witness: a genuine card of another
kind (example 00) and a revoked, expired one (example 03), from the spec's example issuer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.certificates import shc
from registry.errors import BadRequest
from registry.verification import issuers
from tests.support import BASE_URL, OPERATOR, World
from tests.verification.helpers import (
    PARTNER_ISSUER,
    SHC_EXAMPLES,
    SPEC_ISSUER,
    examination_card_payload,
    example,
    other_card_payload,
    partner_jwks,
    partner_key,
    register_issuer,
    sign_card,
    spec_issuer_files,
    verify,
)


@pytest.fixture
def spec_examples() -> Path:
    if not SHC_EXAMPLES.is_dir():
        pytest.skip(f"the SMART Health Cards example vectors are not at {SHC_EXAMPLES}")
    return SHC_EXAMPLES


def _register_spec_issuer(world: World) -> None:
    jwks, crls = spec_issuer_files()
    register_issuer(world, SPEC_ISSUER, jwks, crls)


def test_the_spec_example_card_is_untrusted_until_its_issuer_is_registered(
    world: World, spec_examples: Path
) -> None:
    qr = example("00", "f-qr-code-numeric-value-0.txt")
    before = verify(world, {"qr": qr})
    assert before["result"] == "untrusted_issuer"
    assert before["issuer"] == SPEC_ISSUER
    _register_spec_issuer(world)
    after = verify(world, {"qr": qr})
    assert after["result"] == "valid"
    assert after["card_type"] == "other"
    assert after["issuer"] == SPEC_ISSUER
    assert after["kid"] == "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"
    # a genuine card of another kind never passes for an examination certificate
    assert after["certificate"] is None and after["holder"] is None and after["clinic"] is None
    assert "not an examination certificate" in after["reason"]
    assert after["revocation_checked_at"] is not None


def test_the_spec_example_03_is_revoked_by_its_issuers_list(
    world: World, spec_examples: Path
) -> None:
    _register_spec_issuer(world)
    by_qr = verify(world, {"qr": example("03", "f-qr-code-numeric-value-0.txt")})
    by_jws = verify(world, {"jws": example("03", "d-jws.txt")})
    for answer in (by_qr, by_jws):
        # revoked (rid vwAjHdarZuc listed with a time after its nbf) and expired: revoked wins
        assert answer["result"] == "revoked"
        assert answer["card_type"] == "other"
        assert answer["reason"] == "listed on the issuer's revocation list"


def test_a_suspended_issuer_answers_issuer_suspended(world: World, spec_examples: Path) -> None:
    _register_spec_issuer(world)
    with world.ctx.db.unit_of_work() as uow:
        issuers.set_issuer_status(
            uow, principal=OPERATOR, iss=SPEC_ISSUER, status="suspended", reason="key leak"
        )
        uow.commit()
    answer = verify(world, {"jws": example("00", "d-jws.txt")})
    assert answer["result"] == "issuer_suspended"
    assert answer["reason"] == f"the issuer {SPEC_ISSUER} is suspended"


def test_a_partner_examination_card_is_read_and_judged_by_rid_and_time(world: World) -> None:
    key, kid = partner_key()
    now = datetime.now(UTC)
    early = sign_card(examination_card_payload(PARTNER_ISSUER, rid="AAAAAAAAAAA"), key)
    late = sign_card(
        examination_card_payload(
            PARTNER_ISSUER, rid="AAAAAAAAAAA", issued_at=now + timedelta(seconds=5)
        ),
        key,
    )
    # the partner revoked rid AAAAAAAAAAA for cards signed before now: the early one only
    crl = {"kid": kid, "method": "rid", "ctr": 1, "rids": [f"AAAAAAAAAAA.{int(now.timestamp())}"]}
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key), [crl])
    revoked = verify(world, {"jws": early})
    assert revoked["result"] == "revoked"
    assert revoked["card_type"] == "examination-certificate"
    current = verify(world, {"qr": shc.qr_payload(late)})
    assert current["result"] == "valid"
    assert current["certificate"]["id"] == "KZ-7F3K-9QPX"
    assert current["holder"]["name"] == "Karimov Rustam"
    # the registry vouches for its own clinics only: a partner's card names no clinic of ours
    assert current["clinic"] is None


def test_a_partner_card_of_another_kind_expires_and_starts_on_its_own_dates(
    world: World,
) -> None:
    key, _kid = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key))
    now = datetime.now(UTC)
    expired = sign_card(
        other_card_payload(
            PARTNER_ISSUER, nbf=now - timedelta(days=9), exp=now - timedelta(days=1)
        ),
        key,
    )
    future = sign_card(other_card_payload(PARTNER_ISSUER, nbf=now + timedelta(days=1)), key)
    assert verify(world, {"jws": expired})["result"] == "expired"
    assert verify(world, {"jws": future})["result"] == "not_yet_valid"


def test_a_card_signed_by_another_key_under_a_partners_iss_is_refused(world: World) -> None:
    key, _kid = partner_key()
    impostor, _ = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(key))
    forged = sign_card(other_card_payload(PARTNER_ISSUER, nbf=datetime.now(UTC)), impostor)
    answer = verify(world, {"jws": forged})
    assert answer["result"] == "invalid_signature"
    assert "has no key" in answer["reason"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "http://partner.example.org"}, "https URL"),
        ({"iss": BASE_URL}, "own issuer URL"),
        ({"iss": f"{PARTNER_ISSUER}/"}, "trailing slash"),
        ({"kid": "not-the-thumbprint"}, "thumbprint"),
        ({"d": "c2VjcmV0"}, "private key"),
        ({"kty": "RSA"}, "EC P-256"),
        ({"crl_kid": "someone-else"}, "names no key"),
        ({"crl_rids": ["not a rid!"]}, "malformed entries"),
    ],
)
def test_an_issuer_registration_is_checked(
    world: World, change: dict[str, Any], message: str
) -> None:
    key, kid = partner_key()
    jwks = partner_jwks(key)
    jwk = jwks["keys"][0]
    for member in ("kid", "d", "kty"):
        if member in change:
            jwk[member] = change[member]
    crl = {
        "kid": change.get("crl_kid", kid),
        "method": "rid",
        "ctr": 1,
        "rids": change.get("crl_rids", ["MKyCxh7p6uQ"]),
    }
    with world.ctx.db.unit_of_work() as uow, pytest.raises(BadRequest, match=message):
        issuers.add_issuer(
            uow,
            principal=OPERATOR,
            iss=change.get("iss", PARTNER_ISSUER),
            jwks=jwks,
            crls=[crl],
            settings=world.ctx.settings,
        )


def test_registering_again_replaces_keys_and_lists_and_is_audited(world: World) -> None:
    from sqlalchemy import select

    from registry.audit.models import AuditEvent

    first, _ = partner_key()
    second, second_kid = partner_key()
    register_issuer(world, PARTNER_ISSUER, partner_jwks(first))
    crl = {"kid": second_kid, "method": "rid", "ctr": 2, "rids": ["MKyCxh7p6uQ"]}
    register_issuer(world, PARTNER_ISSUER, partner_jwks(second), [crl])
    with world.ctx.db.reading() as uow:
        rows = issuers.list_issuers(uow)
        actions = uow.session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == PARTNER_ISSUER)
        ).all()
    assert [r.iss for r in rows] == [PARTNER_ISSUER]
    assert [k["kid"] for k in rows[0].jwks["keys"]] == [second_kid]
    assert rows[0].crl == {second_kid: crl}
    assert actions == ["issuer.create", "issuer.update"]
    old_card = sign_card(other_card_payload(PARTNER_ISSUER, nbf=datetime.now(UTC)), first)
    assert verify(world, {"jws": old_card})["result"] == "invalid_signature"


@pytest.mark.committed
def test_the_issuer_add_command_registers_the_spec_issuer(
    world: World, spec_examples: Path, cli_env: dict[str, str]
) -> None:
    from click.testing import CliRunner

    from registry.cli import main

    folder = spec_examples / "issuer" / ".well-known"
    crl = next((folder / "crl").glob("*.json"))
    result = CliRunner().invoke(
        main,
        [
            "issuer",
            "add",
            "--iss",
            SPEC_ISSUER,
            "--jwks",
            str(folder / "jwks.json"),
            "--crl",
            str(crl),
            "--name",
            "SMART Health Cards example issuer",
        ],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    assert f"registered issuer {SPEC_ISSUER}: 2 key(s), 1 revocation list(s)" in result.output
    listed = CliRunner().invoke(main, ["issuer", "list"], env=cli_env)
    assert SPEC_ISSUER in listed.output and "active" in listed.output
    answer = verify(world, {"qr": example("00", "f-qr-code-numeric-value-0.txt")})
    assert (answer["result"], answer["card_type"]) == ("valid", "other")
    suspended = CliRunner().invoke(
        main, ["issuer", "suspend", SPEC_ISSUER, "--reason", "audit"], env=cli_env
    )
    assert suspended.exit_code == 0, suspended.output
    assert verify(world, {"jws": example("00", "d-jws.txt")})["result"] == "issuer_suspended"

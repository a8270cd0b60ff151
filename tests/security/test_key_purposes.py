"""Keys that sign one thing each: a signature counts only from a key of the right purpose.

The registry holds three keys (token, certificate, document). Whoever obtains the online
token key, or the document key, must not be able to mint a card that any verifier of ours
accepts, a trust list an offline verifier loads, or an access token; and neither key is in
the SMART Health Cards issuer key set that other verifiers trust.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner

from registry.certificates import shc
from registry.cli import main
from registry.crypto import jws
from registry.crypto.canonical import canonical_json
from registry.verification.offline import TrustList, TrustListError, document_keys_from
from tests.support import BASE_URL, World
from tests.verification.helpers import card_of, certificate, publish, verify


@pytest.fixture
def cli_env(world: World) -> dict[str, str]:
    settings = world.ctx.settings
    return {
        "REGISTRY_DATABASE_URL": settings.database_url,
        "REGISTRY_KEYS_DIR": str(settings.keys_dir),
        "REGISTRY_BASE_URL": settings.base_url,
    }


def _forgeries(world: World, genuine: str) -> dict[str, str]:
    """The genuine card's exact payload re-signed with the token and the document key.

    Each under its own kid, and under the certificate key's kid (a verifier that picked the
    key by kid alone would then check the signature against the wrong key)."""
    _header, payload = shc.decode_card(genuine)
    certificate_kid = world.ctx.keystore.active("certificate").kid
    forged = {}
    for purpose in ("token", "document"):
        key = world.ctx.keystore.active(purpose)
        forged[f"{purpose} key, own kid"] = shc.encode_card(payload, key.private_key, key.kid)
        forged[f"{purpose} key, certificate kid"] = jws.sign(
            shc.deflate(shc.minify(payload)),
            key.private_key,
            kid=certificate_kid,
            headers={"zip": "DEF", "alg": "ES256"},
        )
    return forged


def test_neither_the_token_nor_the_document_key_is_in_the_issuer_key_set(world: World) -> None:
    issuer_set = world.http.get("/.well-known/jwks.json").json["keys"]
    keystore = world.ctx.keystore
    assert {k["kid"] for k in issuer_set} == {k.kid for k in keystore.keys("certificate")}
    assert all(k["use"] == "sig" and k["alg"] == "ES256" for k in issuer_set)
    for purpose in ("token", "document"):
        assert keystore.active(purpose).kid not in {k["kid"] for k in issuer_set}
    # they are published elsewhere, each with its purpose
    by_kid = {k["kid"]: k for k in world.http.get("/.well-known/registry-keys.json").json["keys"]}
    for purpose in ("token", "certificate", "document"):
        assert by_kid[keystore.active(purpose).kid]["purpose"] == purpose


def test_a_card_signed_with_the_token_or_document_key_is_refused_by_the_verify_api(
    world: World,
) -> None:
    publish(world)
    genuine = card_of(world, certificate(world))
    assert verify(world, {"jws": genuine})["result"] == "valid"
    for how, forged in _forgeries(world, genuine).items():
        answer = verify(world, {"jws": forged})
        assert answer["result"] == "invalid_signature", how
        assert answer["certificate"] is None, how


@pytest.mark.committed
def test_a_card_signed_with_the_token_or_document_key_fails_registry_verify_online_and_offline(
    world: World, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    publish(world)
    genuine = card_of(world, certificate(world))
    trust_file = tmp_path / "trust-list.json"
    exported = CliRunner().invoke(
        main, ["trust-list", "export", "-o", str(trust_file)], env=cli_env
    )
    assert exported.exit_code == 0, exported.output
    keys_file = tmp_path / "registry-keys.json"
    keys_file.write_text(json.dumps(world.http.get("/.well-known/registry-keys.json").json))
    offline = ["--offline", "--trust-list", str(trust_file), "--registry-jwks", str(keys_file)]

    def run(card: str, *options: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(main, ["verify", *options, card], env=cli_env)
        return result.exit_code, json.loads(result.output)

    assert run(genuine)[0] == 0 and run(genuine, *offline)[0] == 0
    for how, forged in _forgeries(world, genuine).items():
        for options in ((), tuple(offline)):
            status, answer = run(forged, *options)
            assert (status, answer["result"]) == (1, "invalid_signature"), (how, options)


def test_a_trust_list_signed_with_another_registry_key_is_refused_offline(world: World) -> None:
    publish(world)
    document = world.http.get("/api/v1/trust-list").json["document"]
    pinned = document_keys_from(world.http.get("/.well-known/registry-keys.json").json)
    assert set(pinned) == {k.kid for k in world.ctx.keystore.keys("document")}
    for purpose in ("token", "certificate"):
        key = world.ctx.keystore.active(purpose)
        token = jws.sign(canonical_json(document), key.private_key, kid=key.kid)
        for registry_keys in (pinned, None):  # pinned, or the keys the list carries
            with pytest.raises(TrustListError, match="not a registry key"):
                TrustList.load(json.dumps({"jws": token}).encode(), registry_keys=registry_keys)


def test_the_issuer_key_set_is_refused_as_a_pin_for_trust_lists(world: World) -> None:
    with pytest.raises(TrustListError, match="no key of purpose document"):
        document_keys_from(world.http.get("/.well-known/jwks.json").json)


def test_an_access_token_signed_with_the_certificate_or_document_key_is_refused(
    world: World,
) -> None:
    client = world.api_client("admin")
    claims = {"iss": BASE_URL, "sub": client.id, "aud": BASE_URL, "scope": "admin"}
    claims |= {"iat": 0, "exp": 2**33}
    for purpose in ("certificate", "document"):
        key = world.ctx.keystore.active(purpose)
        forged = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
        response = world.http.get("/api/v1/clinics", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, purpose
        assert response.json["message"] == "the access token was not issued by this registry"

"""Our SMART Health Card code against the published specification's own example cards.

The vectors (README in the test data folder) are COVID-19 immunization cards from the spec's
example issuer: a verifier of ours must read them, verify them with that issuer's keys,
recognise them as another kind of card, and see example 03 as revoked by the issuer's CRL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.certificates import qr, shc
from registry.crypto.keys import load_public_jwk, thumbprint
from tests.support import World


def example(folder: Path, number: str, suffix: str) -> str:
    return (folder / f"example-{number}-{suffix}").read_text("utf-8").strip()


def issuer_key(folder: Path, kid: str) -> dict[str, Any]:
    keys = json.loads((folder / "issuer/.well-known/jwks.json").read_text("utf-8"))["keys"]
    [key] = [k for k in keys if k["kid"] == kid]
    return dict(key)


@pytest.mark.parametrize("number", ["00", "03"])
def test_numeric_qr_decodes_to_the_published_jws_and_back(shc_examples: Path, number: str) -> None:
    numeric = example(shc_examples, number, "f-qr-code-numeric-value-0.txt")
    token = example(shc_examples, number, "d-jws.txt")
    assert shc.jws_from_qr(numeric) == token
    assert shc.qr_payload(token) == numeric
    assert qr.qr_code(numeric).designator == "18-L"


def test_example_00_inflates_verifies_and_is_another_kind_of_card(shc_examples: Path) -> None:
    token = example(shc_examples, "00", "d-jws.txt")
    header, payload = shc.decode_card(token)
    assert header["alg"] == "ES256" and header["zip"] == "DEF"
    assert header["kid"] == "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"
    jwk = issuer_key(shc_examples, header["kid"])
    # The spec's kid is the RFC 7638 thumbprint, computed as our keys module computes it.
    assert thumbprint(jwk) == header["kid"]
    assert shc.verify_card(token, load_public_jwk(jwk)) == payload
    assert payload["iss"] == "https://spec.smarthealth.cards/examples/issuer"
    # The issuer's secret is not public, so the rid can be read but not recomputed.
    assert payload["vc"]["rid"] == "MKyCxh7p6uQ"
    assert "exp" not in payload
    assert shc.card_type(payload) == "other"
    with pytest.raises(shc.CardFormatError):
        shc.read_certificate(payload)


@pytest.mark.parametrize("number", ["00", "03"])
def test_the_smart_health_card_files_parse(shc_examples: Path, number: str) -> None:
    raw = (shc_examples / f"example-{number}-e-file.smart-health-card").read_bytes()
    assert shc.read_health_card_file(raw) == [example(shc_examples, number, "d-jws.txt")]


def test_example_03_is_revoked_by_the_issuer_crl_and_expired(shc_examples: Path) -> None:
    token = example(shc_examples, "03", "d-jws.txt")
    header, payload = shc.decode_card(token)
    crl_path = shc_examples / f"issuer/.well-known/crl/{header['kid']}.json"
    crl = json.loads(crl_path.read_text("utf-8"))
    assert crl["method"] == "rid" and crl["kid"] == header["kid"]
    jwk = issuer_key(shc_examples, header["kid"])
    # The JWKS announces the CRL's counter, as the spec asks of issuers that revoke.
    assert jwk["crlVersion"] == crl["ctr"]
    assert payload["vc"]["rid"] == "vwAjHdarZuc"
    assert shc.rid_revoked(crl, rid=payload["vc"]["rid"], nbf=payload["nbf"])
    assert payload["exp"] < datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    # Example 00 shares the issuer and key but is not on the list.
    _, other = shc.decode_card(example(shc_examples, "00", "d-jws.txt"))
    assert not shc.rid_revoked(crl, rid=other["vc"]["rid"], nbf=other["nbf"])


def test_our_crl_document_has_the_published_crl_shape(shc_examples: Path) -> None:
    published = next((shc_examples / "issuer/.well-known/crl").glob("*.json"))
    crl = json.loads(published.read_text("utf-8"))
    entries: list[tuple[str, int | None]] = []
    for entry in crl["rids"]:
        rid, _, timestamp = entry.partition(".")
        entries.append((rid, int(timestamp) if timestamp else None))
    ours = shc.crl_document(crl["kid"], crl["ctr"], entries)
    assert set(ours) == set(crl)
    assert sorted(ours["rids"]) == sorted(crl["rids"])


# -- what the official validator checks of our own output -----------------------------------
def test_our_qr_svg_is_recognised_as_svg_from_its_first_byte(card: str) -> None:
    svg = qr.qr_svg(shc.qr_payload(card))
    assert svg.startswith(b"<svg ") and b"<?xml" not in svg
    assert b'xmlns="http://www.w3.org/2000/svg"' in svg


def test_our_cards_carry_only_the_health_card_type_and_are_still_recognised(card: str) -> None:
    _header, payload = shc.decode_card(card)
    # SMART Health Cards 1.4 deprecates further vc.type entries (the validator warns on them)
    assert payload["vc"]["type"] == ["https://smarthealth.cards#health-card"]
    assert shc.card_type(payload) == "examination-certificate"
    assert shc.read_certificate(payload).certificate_id.startswith("KZ-")


def test_a_card_issued_with_the_old_extra_type_is_still_our_certificate(card: str) -> None:
    _header, payload = shc.decode_card(card)
    payload["vc"]["type"].append(shc.EXAMINATION_CERTIFICATE_TYPE)
    assert shc.card_type(payload) == "examination-certificate"


def test_a_card_of_another_kind_with_only_the_health_card_type_is_other(
    shc_examples: Path,
) -> None:
    _header, payload = shc.decode_card(example(shc_examples, "00", "d-jws.txt"))
    assert payload["vc"]["type"][0] == "https://smarthealth.cards#health-card"
    assert shc.card_type(payload) == "other"


def test_every_certificate_key_publishes_an_empty_crl_from_the_start(world: World) -> None:
    from tests.certificates.builders import load_rulesets

    load_rulesets(world.app)
    kid = world.ctx.keystore.active("certificate").kid
    crl = world.http.get(f"/.well-known/crl/{kid}.json")
    assert crl.status_code == 200
    assert crl.json == {"kid": kid, "method": "rid", "ctr": 1, "rids": []}
    keys = {k["kid"]: k for k in world.http.get("/.well-known/jwks.json").json["keys"]}
    assert keys[kid]["crlVersion"] == crl.json["ctr"]

"""Keys, JWS, encryption at rest and blind indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.crypto import jws
from registry.crypto.canonical import canonical_json
from registry.crypto.encryption import DataCipher, DecryptionError, document_index
from registry.crypto.keys import (
    KeyFormatError,
    b64url,
    generate_key,
    load_private_jwk,
    load_public_jwk,
    private_jwk,
    public_jwk,
    thumbprint,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "shc-spec-examples"


def test_thumbprint_matches_the_kid_of_the_smart_health_cards_example_issuer() -> None:
    jwks_file = SHARED / "issuer" / ".well-known" / "jwks.json"
    if not jwks_file.exists():
        pytest.skip(f"the shared SMART Health Cards vectors are not at {jwks_file}")
    for key in json.loads(jwks_file.read_text("utf-8"))["keys"]:
        assert thumbprint(key) == key["kid"]


def test_jwk_round_trip_and_refusals() -> None:
    key = generate_key()
    secret = private_jwk(key)
    assert load_private_jwk(secret).private_numbers() == key.private_numbers()
    assert load_public_jwk(public_jwk(key)).public_numbers() == key.public_key().public_numbers()
    with pytest.raises(KeyFormatError, match="only EC P-256"):
        load_public_jwk({"kty": "oct", "k": "c2VjcmV0"})
    other = private_jwk(generate_key())
    with pytest.raises(KeyFormatError, match="does not belong"):
        load_private_jwk({**secret, "d": other["d"]})


def test_detached_jws_verifies_only_the_signed_bytes() -> None:
    key = generate_key()
    token = jws.sign_detached(b"payload", key, kid="k1")
    assert token.split(".")[1] == ""
    jws.verify_detached(token, b"payload", key.public_key())
    with pytest.raises(jws.JWSError, match="does not verify"):
        jws.verify_detached(token, b"payloaD", key.public_key())
    with pytest.raises(jws.JWSError, match="does not verify"):
        jws.verify_detached(token, b"payload", generate_key().public_key())


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES512"])
def test_only_es256_headers_are_read(alg: str) -> None:
    header = b64url(json.dumps({"alg": alg}).encode())
    with pytest.raises(jws.JWSError, match="is not allowed"):
        jws.read_header(f"{header}.e30.")


def test_data_cipher_rotation_keeps_old_ciphertexts_readable() -> None:
    old, new = b"o" * 32, b"n" * 32
    sealed = DataCipher([old]).encrypt(b"Rahimov", context=b"person:1")
    rotated = DataCipher([new, old])
    assert rotated.decrypt(sealed, context=b"person:1") == b"Rahimov"
    assert rotated.needs_rotation(sealed)
    assert not rotated.needs_rotation(rotated.encrypt(b"x"))
    with pytest.raises(DecryptionError, match="context differs"):
        rotated.decrypt(sealed, context=b"person:2")
    with pytest.raises(DecryptionError, match="not configured"):
        DataCipher([new]).decrypt(sealed, context=b"person:1")


@given(st.binary(max_size=300), st.binary(max_size=20))
def test_encryption_round_trips_any_bytes(plaintext: bytes, context: bytes) -> None:
    cipher = DataCipher([b"k" * 32])
    assert cipher.decrypt(cipher.encrypt(plaintext, context=context), context=context) == plaintext


def test_blind_index_ignores_formatting_but_not_country() -> None:
    secret = b"s" * 32
    a = document_index(secret, country="tj", number="a 123-456.7")
    assert a == document_index(secret, country="TJ", number="A1234567")
    assert a != document_index(secret, country="KG", number="A1234567")
    assert a != document_index(b"t" * 32, country="TJ", number="A1234567")
    assert "A1234567" not in a


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_fast_canonical_form_equals_the_rfc8785_library(value: object) -> None:
    import rfc8785

    assert canonical_json(value) == rfc8785.dumps(value)

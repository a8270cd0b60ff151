"""Compact and detached JWS with ES256 only: no ``none``, no HMAC, no key confusion."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from registry.crypto.keys import PrivateKey, PublicKey, b64url, b64url_decode
from registry.jsonlimits import loads_strict

ALGORITHMS = ["ES256"]
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+")
_ES256 = ec.ECDSA(hashes.SHA256())
_ES256_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


class JWSError(ValueError):
    """A JWS that is malformed or whose signature does not verify."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def read_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified; raises JWSError when malformed."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise JWSError("a compact JWS has three dot-separated parts", malformed=True)
    try:
        header = loads_strict(b64url_decode(token.split(".", 1)[0]))
    except ValueError as exc:
        raise JWSError("the JWS header is not base64url JSON", malformed=True) from exc
    if not isinstance(header, dict):
        raise JWSError("the JWS header is not a JSON object", malformed=True)
    if header.get("alg") not in ALGORITHMS:
        raise JWSError(f"algorithm {header.get('alg')!r} is not allowed (only ES256)")
    return header


def sign(
    payload: bytes,
    key: PrivateKey,
    *,
    kid: str,
    headers: dict[str, Any] | None = None,
    deterministic: bool = False,
) -> str:
    """A compact JWS over raw payload bytes with header alg ES256, kid and the given members.

    ``deterministic`` signs with RFC 6979 nonces: the same payload and key give the same JWS,
    so a published document signed in several processes is the same bytes everywhere.
    """
    header: dict[str, Any] = {"kid": kid, "typ": None}
    header.update(headers or {})
    # signed with cryptography directly, the header written as PyJWT writes it
    header = {"alg": "ES256", **{k: v for k, v in header.items() if v is not None}}
    signing_input = f"{b64url(canonical_header(header))}.{b64url(payload)}"
    algorithm = _ES256_DETERMINISTIC if deterministic else _ES256
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), algorithm))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def canonical_header(header: dict[str, Any]) -> bytes:
    """A protected header as PyJWT writes it: sorted keys, no spaces."""
    return json.dumps(header, separators=(",", ":"), sort_keys=True).encode()


def verify(token: str, key: PublicKey) -> bytes:
    """The payload bytes of a compact JWS whose ES256 signature verifies against ``key``.

    Checked with ``cryptography`` directly: the form by one regular expression, the raw
    ``r || s`` signature (RFC 7518 §3.4) converted to DER and verified over the signing input.
    """
    header = read_header(token)
    if not _COMPACT.fullmatch(token):
        raise JWSError("JWS cannot be read: its parts are not base64url", malformed=True)
    signing_input, _, encoded_signature = token.rpartition(".")
    try:
        payload = b64url_decode(signing_input.split(".", 1)[1])
        signature = b64url_decode(encoded_signature)
    except ValueError as exc:
        raise JWSError("JWS cannot be read: not base64url", malformed=True) from exc
    verify_signature(header, signing_input, signature, key)
    return payload


def verify_signature(
    header: dict[str, Any], signing_input: str, signature: bytes, key: PublicKey
) -> None:
    """Check a compact JWS already taken apart: its header (as ``read_header`` gave it), the
    signing input (``header.payload`` as sent) and the decoded signature. Raises JWSError."""
    if header.get("b64") is False or "crit" in header:
        raise JWSError("JWS cannot be read: unencoded payloads and crit are not accepted")
    if len(signature) != 64 or not isinstance(key, ec.EllipticCurvePublicKey):
        raise JWSError("signature does not verify")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, signing_input.encode("ascii"), _ES256)
    except InvalidSignature as exc:
        raise JWSError("signature does not verify") from exc


def sign_detached(
    payload: bytes, key: PrivateKey, *, kid: str, headers: dict[str, Any] | None = None
) -> str:
    """A detached compact JWS (RFC 7515 appendix F): ``header..signature``."""
    header, _, signature = sign(payload, key, kid=kid, headers=headers).split(".")
    return f"{header}..{signature}"


def verify_detached(token: str, payload: bytes, key: PublicKey) -> None:
    """Check a detached JWS over ``payload``; raises JWSError when it does not verify."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise JWSError("a detached JWS has the form header..signature", malformed=True)
    header, middle, signature = token.split(".")
    if middle:
        raise JWSError(
            "the JWS carries a payload; a detached signature is expected", malformed=True
        )
    verify(f"{header}.{b64url(payload)}.{signature}", key)

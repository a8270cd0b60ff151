"""EC P-256 keys as JWKs, RFC 7638 thumbprints and key files on disk."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

PrivateKey = ec.EllipticCurvePrivateKey
PublicKey = ec.EllipticCurvePublicKey


class KeyFormatError(ValueError):
    """A JWK that is not an EC P-256 key we can use."""


def b64url(raw: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ValueError on junk."""
    if not isinstance(text, str):
        raise ValueError("expected a base64url string")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (UnicodeEncodeError, base64.binascii.Error) as exc:  # type: ignore[attr-defined]
        raise ValueError("not base64url") from exc


def generate_key() -> PrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _coordinate(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


def public_jwk(key: PrivateKey | PublicKey) -> dict[str, str]:
    """The public JWK (kty, crv, x, y) of a P-256 key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    numbers = public.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _coordinate(numbers.x), "y": _coordinate(numbers.y)}


def private_jwk(key: PrivateKey) -> dict[str, str]:
    """The private JWK (with ``d``) of a P-256 key."""
    jwk = public_jwk(key)
    jwk["d"] = _coordinate(key.private_numbers().private_value)
    return jwk


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key."""
    required = {"crv": jwk.get("crv"), "kty": jwk.get("kty"), "x": jwk.get("x"), "y": jwk.get("y")}
    if not all(isinstance(v, str) for v in required.values()):
        raise KeyFormatError("an EC JWK needs crv, kty, x and y")
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def load_public_jwk(jwk: dict[str, Any]) -> PublicKey:
    """A P-256 public key from a JWK; refuses anything else (RSA, other curves, symmetric keys)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise KeyFormatError("only EC P-256 keys are accepted")
    try:
        x = int.from_bytes(b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFormatError("the JWK's x and y are not a point on P-256") from exc


def load_private_jwk(jwk: dict[str, Any]) -> PrivateKey:
    """A P-256 private key from a JWK with ``d``; checks that d matches x and y."""
    public = load_public_jwk(jwk)
    try:
        d = int.from_bytes(b64url_decode(jwk["d"]), "big")
        key = ec.derive_private_key(d, ec.SECP256R1())
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFormatError("the JWK has no usable private part d") from exc
    if key.public_key().public_numbers() != public.public_numbers():
        raise KeyFormatError("the JWK's d does not belong to its x and y")
    return key


def write_private_file(path: Path, content: bytes) -> None:
    """Write a secret file readable by the owner only (mode 0600), from its first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def save_private_jwk(path: Path, key: PrivateKey, **metadata: str) -> dict[str, str]:
    """Save a private JWK (with ``kid`` and extra members) to a 0600 file; returns the JWK."""
    jwk = private_jwk(key)
    jwk["kid"] = thumbprint(jwk)
    jwk.update(metadata)
    write_private_file(path, json.dumps(jwk, indent=2).encode("utf-8"))
    return jwk


def read_jwk_file(path: Path) -> dict[str, Any]:
    """Read a JWK JSON file."""
    try:
        jwk = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyFormatError(f"cannot read a JWK from {path}: {exc}") from exc
    if not isinstance(jwk, dict):
        raise KeyFormatError(f"{path} does not hold a JWK object")
    return jwk

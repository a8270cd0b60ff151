"""Bundle signatures (SPEC §3): a detached ES256 JWS over the RFC 8785 bundle without signature."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from registry.crypto import jws
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.crypto.keys import PrivateKey, PublicKey
from registry.fhir import strip_signature

AUTHOR_SIGNATURE = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.1",
    "display": "Author's Signature",
}


def signed_content(bundle: dict[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON of the bundle without ``signature``."""
    return canonical_json(strip_signature(bundle))


def content_hash(bundle: dict[str, Any]) -> str:
    """SHA-256 (hex) of the signed content: the examination's hash, same for same content."""
    return sha256_hex(signed_content(bundle))


def organization_reference(bundle: dict[str, Any]) -> str:
    """The fullUrl of the bundle's Organization entry (the clinic), which signs."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Organization" and entry.get("fullUrl"):
            return str(entry["fullUrl"])
    raise ValueError("the bundle has no Organization entry with a fullUrl")


def sign_bundle(
    bundle: dict[str, Any],
    key: PrivateKey,
    *,
    kid: str,
    when: datetime,
    content: bytes | None = None,
) -> dict[str, Any]:
    """A copy of the bundle carrying ``Bundle.signature`` by the clinic Organization."""
    token = jws.sign_detached(content or signed_content(bundle), key, kid=kid)
    signature = {
        "type": [AUTHOR_SIGNATURE],
        "when": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "who": {"reference": organization_reference(bundle)},
        "sigFormat": "application/jose",
        "data": base64.b64encode(token.encode("ascii")).decode("ascii"),
    }
    return {**strip_signature(bundle), "signature": signature}


def detached_jws(signature_data: str) -> str:
    """The compact detached JWS carried base64-encoded in ``Bundle.signature.data``."""
    try:
        token = base64.b64decode(signature_data, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise jws.JWSError("Bundle.signature.data is not base64 of a JWS", malformed=True) from exc
    jws.read_header(token)
    return token


def verify_bundle(content: bytes, token: str, key: PublicKey) -> None:
    """Raise JWSError unless ``token`` signs ``content`` (see ``signed_content``) with ``key``."""
    jws.verify_detached(token, content, key)

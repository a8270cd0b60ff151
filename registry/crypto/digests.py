"""Keyed and plain SHA-256 digests, and their constant-time comparison: one home for hmac/hashlib
outside the crypto primitives that build on them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 of ``message`` under ``key``."""
    return hmac.new(key, message, hashlib.sha256).digest()


def sha256_text_hex(text: str) -> str:
    """Hex SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_of_parts(parts: Iterable[bytes]) -> str:
    """Hex SHA-256 of the concatenated parts, fed one by one."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def equal(a: str, b: str) -> bool:
    """Whether two digests are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(a, b)

"""RFC 8785 (JCS) canonical JSON: what clinic signatures and registry hashes are computed over."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    return rfc8785.dumps(value)


def sha256_hex(raw: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(raw).hexdigest()

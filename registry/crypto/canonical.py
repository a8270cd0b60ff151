"""RFC 8785 (JCS) canonical JSON: what clinic signatures and registry hashes are computed over."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785


def _plain(value: Any) -> bool:
    """Whether ``json.dumps(sort_keys=True)`` already yields JCS for this value.

    That holds without floats (JCS formats numbers the ECMAScript way) and without object keys
    outside the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units, Python by code
    points; the two orders differ only there). FHIR documents almost never have either.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        # the exact built-in types first: every signed document and audit event is walked
        if kind is str or kind is bool or node is None:
            continue
        if kind is dict or isinstance(node, dict):
            for key in node:
                if type(key) is not str and not isinstance(key, str):
                    return False
                if not key.isascii() and any(ord(ch) > 0xFFFF for ch in key):
                    return False
            stack.extend(node.values())
        elif kind is list or isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, float) or (isinstance(node, int) and abs(node) >= 2**53):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    if _plain(value):
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    return rfc8785.dumps(value)


def sha256_hex(raw: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(raw).hexdigest()

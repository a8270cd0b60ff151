"""Encryption at rest (AES-256-GCM) with a key ring, and keyed blind indexes for lookups."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class DecryptionError(ValueError):
    """Ciphertext that no configured key opens, or that was tampered with."""


def key_id(key: bytes) -> bytes:
    """A 4-byte identifier of a data key, stored in front of each ciphertext."""
    return hashlib.sha256(b"registry-data-key-id" + key).digest()[:4]


class DataCipher:
    """AES-GCM with a ring of keys: the first encrypts, every one decrypts (for rotation)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one data key is needed")
        for key in keys:
            if len(key) != 32:
                raise ValueError("data keys are 32 bytes (AES-256)")
        self._primary = keys[0]
        self._by_id = {key_id(k): AESGCM(k) for k in keys}
        self._primary_id = key_id(self._primary)

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        """Encrypt with the primary key; ``context`` is bound as associated data."""
        nonce = os.urandom(12)
        sealed = self._by_id[self._primary_id].encrypt(nonce, plaintext, context)
        return _VERSION + self._primary_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, context: bytes = b"") -> bytes:
        """Decrypt with whichever configured key sealed it."""
        if len(ciphertext) < 1 + 4 + 12 + 16 or ciphertext[:1] != _VERSION:
            raise DecryptionError("not a ciphertext of ours")
        aead = self._by_id.get(ciphertext[1:5])
        if aead is None:
            raise DecryptionError("sealed with a data key that is not configured")
        try:
            return aead.decrypt(ciphertext[5:17], ciphertext[17:], context)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext was altered or the context differs") from exc

    def needs_rotation(self, ciphertext: bytes) -> bool:
        """Whether a ciphertext was sealed with a key other than the primary one."""
        return ciphertext[1:5] != self._primary_id


def normalise_document_number(number: str) -> str:
    """Upper-case, NFKC, without spaces, dashes and dots: how a document number is compared."""
    folded = unicodedata.normalize("NFKC", number).upper()
    return "".join(ch for ch in folded if ch.isalnum())


def blind_index(secret: bytes, *parts: str) -> str:
    """HMAC-SHA-256 (hex) over normalised parts: a lookup key that reveals nothing by itself."""
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def document_index(secret: bytes, *, country: str, number: str) -> str:
    """The blind index of an identity document (issuing country + normalised number)."""
    return blind_index(secret, "document", country.upper(), normalise_document_number(number))

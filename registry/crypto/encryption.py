"""Encryption at rest (AES-256-GCM) with a key ring, and keyed blind indexes for lookups."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Format 1: version, key id, nonce, AES-GCM(plaintext). Format 2 pads the plaintext to a bucket
# first, so the length of a sealed value tells nothing finer than its bucket (a sealed "normal"
# chest X-ray and a "suggestive of TB" one had told themselves apart by five bytes).
_UNPADDED = b"\x01"
_PADDED = b"\x02"
_HEADER = 1 + 4 + 12
_TAG = 16
_LENGTH = 4  # big-endian plaintext length in front of the padded plaintext
SMALLEST_BUCKET = 64
LARGE_STEP = 64 * 1024


class DecryptionError(ValueError):
    """Ciphertext that no configured key opens, or that was tampered with."""


def bucket_size(length: int) -> int:
    """The padded size of a plaintext of ``length`` bytes, its length prefix included.

    Powers of two from 64 bytes up to 64 KiB (at most double), then whole multiples of 64 KiB
    (large photos and bundles waste at most 64 KiB each).
    """
    needed = length + _LENGTH
    if needed > LARGE_STEP:
        return -(-needed // LARGE_STEP) * LARGE_STEP
    size = SMALLEST_BUCKET
    while size < needed:
        size *= 2
    return size


def sealed_length(length: int) -> int:
    """The length of the ciphertext of a plaintext of ``length`` bytes."""
    return _HEADER + bucket_size(length) + _TAG


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
        """Pad to its bucket, encrypt with the primary key; ``context`` is associated data."""
        padded = len(plaintext).to_bytes(_LENGTH, "big") + plaintext
        padded += bytes(bucket_size(len(plaintext)) - len(padded))
        nonce = os.urandom(12)
        # the format byte is authenticated too: a padded value cannot pass for an unpadded one
        sealed = self._by_id[self._primary_id].encrypt(nonce, padded, _PADDED + context)
        return _PADDED + self._primary_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, context: bytes = b"") -> bytes:
        """Decrypt with whichever configured key sealed it (padded or, stored earlier, not)."""
        form = ciphertext[:1]
        if len(ciphertext) < _HEADER + _TAG or form not in (_UNPADDED, _PADDED):
            raise DecryptionError("not a ciphertext of ours")
        aead = self._by_id.get(ciphertext[1:5])
        if aead is None:
            raise DecryptionError("sealed with a data key that is not configured")
        associated = context if form == _UNPADDED else _PADDED + context
        try:
            plain = aead.decrypt(ciphertext[5:17], ciphertext[17:], associated)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext was altered or the context differs") from exc
        if form == _UNPADDED:
            return plain
        length = int.from_bytes(plain[:_LENGTH], "big")
        if len(plain) < _LENGTH or length > len(plain) - _LENGTH:
            raise DecryptionError("the padded plaintext is inconsistent")
        return plain[_LENGTH : _LENGTH + length]

    def needs_rotation(self, ciphertext: bytes) -> bool:
        """Whether a ciphertext was sealed with a key other than the primary one, or unpadded."""
        return ciphertext[1:5] != self._primary_id or ciphertext[:1] != _PADDED


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

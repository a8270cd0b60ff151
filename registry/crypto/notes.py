"""Signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and witness
cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``), with Ed25519 keys.

A note is text ending in a newline, a blank line, and signature lines
``— <key name> base64(key id || signature)``. The key id is the first four bytes of
``SHA-256(name || "\\n" || type || public key)``: type 0x01 for a log's Ed25519 signature over
the text, 0x04 for a witness's timestamped cosignature over
``"cosignature/v1\\ntime <t>\\n" || text``. Verifier keys travel as ``name+hex(id)+base64(type ||
public key)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 1 << 16


class NoteError(ValueError):
    """A note, checkpoint, key or signature that is malformed or does not verify."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, kind: int, public: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise NoteError(f"a key name may not be empty or hold spaces or '+': {name!r}")


@dataclass(frozen=True)
class Verifier:
    """A public key that checks one kind of note signature under one name."""

    name: str
    kind: int
    public_key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return _raw_public(self.public_key)

    @property
    def id(self) -> int:
        return key_id(self.name, self.kind, self.raw)

    def vkey(self) -> str:
        """The verifier key text: ``name+hex8+base64(type || key)``."""
        material = base64.b64encode(bytes([self.kind]) + self.raw).decode()
        return f"{self.name}+{self.id:08x}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        name, plus, rest = vkey.partition("+")
        hash_hex, plus2, material = rest.partition("+")
        if not plus or not plus2 or len(hash_hex) != 8:
            raise NoteError("a verifier key is name+hash+key")
        _check_name(name)
        try:
            raw = base64.b64decode(material, validate=True)
            claimed = int(hash_hex, 16)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("the verifier key's hash or key material is not well formed") from exc
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("only Ed25519 note and cosignature/v1 keys are supported")
        verifier = cls(name, raw[0], Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.id != claimed or verifier.vkey() != vkey:
            raise NoteError("the verifier key's hash does not match its name and key")
        return verifier


@dataclass(frozen=True)
class Signer:
    """An Ed25519 private key that signs notes (0x01) or cosigns checkpoints (0x04)."""

    name: str
    kind: int
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, kind: int = ED25519) -> Signer:
        if len(seed) != 32:
            raise NoteError("an Ed25519 seed is 32 bytes")
        return cls(name, kind, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.kind, self.private_key.public_key())

    def signature_line(self, text: str, *, timestamp: int | None = None) -> str:
        """One signature line over ``text`` (a cosignature needs the time it is made)."""
        if self.kind == COSIGNATURE_V1:
            if timestamp is None or not 0 <= timestamp < 1 << 63:
                raise NoteError("a cosignature needs a timestamp")
            message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
            blob = struct.pack(">Q", timestamp) + self.private_key.sign(message)
        else:
            blob = self.private_key.sign(text.encode())
        signed = struct.pack(">I", self.verifier.id) + blob
        return f"{DASH} {self.name} {base64.b64encode(signed).decode()}\n"

    def sign(self, text: str) -> str:
        """A new signed note: the text, a blank line, this signer's line."""
        _check_text(text)
        return f"{text}\n{self.signature_line(text)}"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    blob: bytes  # after the key id
    line: str


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("a note may not hold control characters")


def parse_note(raw: str | bytes) -> Note:
    """Split a signed note into text and signature lines (nothing verified yet)."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_NOTE_BYTES:
            raise NoteError("the note is too large")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("a note is UTF-8") from exc
    split = raw.rfind("\n\n")
    if split < 0 or not raw.endswith("\n"):
        raise NoteError("a note is text, a blank line and signature lines")
    text, block = raw[: split + 1], raw[split + 2 :]
    _check_text(text)
    signatures = []
    for line in block.splitlines():
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != DASH or not name or not encoded:
            raise NoteError(f"malformed signature line {line!r}")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteError("a signature is not base64") from exc
        if len(blob) < 5:
            raise NoteError("a signature is too short")
        signatures.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:], line + "\n"))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"a note carries one to {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


def signature_by(note: Note, verifier: Verifier) -> Signature | None:
    """The note's signature line of this verifier (same name and key id), if it has one."""
    return next(
        (s for s in note.signatures if s.name == verifier.name and s.key_id == verifier.id), None
    )


def verify_note(note: Note, verifier: Verifier) -> None:
    """Check the note's signature by ``verifier`` (a 0x01 key); raises NoteError."""
    found = signature_by(note, verifier)
    if found is None:
        raise NoteError(f"the note carries no signature by {verifier.name}")
    try:
        verifier.public_key.verify(found.blob, note.text.encode())
    except InvalidSignature as exc:
        raise NoteError(f"the signature by {verifier.name} does not verify") from exc


def cosignature_time(note: Note, witness: Verifier) -> int:
    """Check a witness's cosignature on the note; the time it was made."""
    found = signature_by(note, witness)
    if found is None:
        raise NoteError(f"the note carries no cosignature by {witness.name}")
    if len(found.blob) != 8 + 64:
        raise NoteError("a cosignature is a timestamp and an Ed25519 signature")
    (timestamp,) = struct.unpack(">Q", found.blob[:8])
    message = f"cosignature/v1\ntime {timestamp}\n{note.text}".encode()
    try:
        witness.public_key.verify(found.blob[8:], message)
    except InvalidSignature as exc:
        raise NoteError(f"the cosignature by {witness.name} does not verify") from exc
    return int(timestamp)


# -- checkpoints -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root hash lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("a checkpoint's origin line is empty")
        if not size.isdigit() or (size != "0" and size.startswith("0")) or len(size) > 20:
            raise NoteError("a checkpoint's size is a decimal number without leading zeroes")
        try:
            raw_root = base64.b64decode(root, validate=True)
        except binascii.Error as exc:
            raise NoteError("a checkpoint's root hash is not base64") from exc
        if len(raw_root) != 32:
            raise NoteError("a checkpoint's root hash is 32 bytes")
        return cls(origin, int(size), raw_root, tuple(lines[3:-1]))


def open_checkpoint(raw: str | bytes, log: Verifier) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint and check the log's signature and origin."""
    note = parse_note(raw)
    verify_note(note, log)
    checkpoint = Checkpoint.parse(note.text)
    if checkpoint.origin != log.name:
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {log.name!r}")
    return checkpoint, note

"""What the log serves: checkpoints with their cosignatures, tiles, entry bundles, proofs.

Everything is read from the sequencer's tables; nothing here writes but the cosignatures that
witnesses send back.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.config import Settings
from registry.crypto.keystore import KeyStore
from registry.crypto.merkle import HASH_SIZE, TILE_WIDTH, ProofError, TiledTree
from registry.crypto.notes import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    cosignature_time,
    parse_note,
    signature_by,
)
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest, Conflict, NotFound
from registry.transparency import log as entries
from registry.transparency.models import (
    LogCheckpoint,
    LogCosignature,
    LogEntry,
    LogTile,
    LogWitness,
)
from registry.transparency.sequencer import tile_width

LOG_SECRET = "log"


def origin(settings: Settings) -> str:
    """The log's name: the base URL without its scheme, and ``/log``."""
    parts = urlsplit(settings.base_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/log"


def log_signer(settings: Settings, keystore: KeyStore) -> Signer:
    """The log's Ed25519 note key: the ``log`` secret of the keys folder is its seed."""
    return Signer.from_seed(origin(settings), keystore.secret(LOG_SECRET))


def log_verifier_key(settings: Settings, keystore: KeyStore) -> str:
    """The verifier key a witness or client pins: ``origin+id+key``."""
    return log_signer(settings, keystore).verifier.vkey()


def latest(session: Session) -> LogCheckpoint | None:
    return session.scalars(
        select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
    ).first()


def checkpoint_note(session: Session, size: int | None = None) -> str:
    """The signed checkpoint (latest, or of ``size``) with every cosignature received for it."""
    row = latest(session) if size is None else session.get(LogCheckpoint, size)
    if row is None:
        raise NotFound("the log has no checkpoint yet" if size is None else f"no checkpoint {size}")
    lines = session.scalars(
        select(LogCosignature.line)
        .where(LogCosignature.size == row.size)
        .order_by(LogCosignature.id)
    ).all()
    return row.note + "".join(lines)


def _tree(session: Session, size: int) -> TiledTree:
    def load(level: int, index: int) -> bytes:
        found = session.scalar(
            select(LogTile.hashes).where(LogTile.level == level, LogTile.idx == index)
        )
        return bytes(found) if found is not None else b""

    return TiledTree(size, load)


def _published_size(session: Session) -> int:
    row = latest(session)
    return row.size if row is not None else 0


def tile(session: Session, level: int, index: int, width: int) -> bytes:
    """A tile as tlog-tiles serves it; only tiles of a signed tree size exist."""
    if not 0 <= level < 64 or not 1 <= width <= TILE_WIDTH:
        raise NotFound("no such tile")
    # a partial tile stays available after its tile fills up: it is a prefix of the full one
    if tile_width(_published_size(session), level, index) < width:
        raise NotFound("no such tile in the published tree")
    stored = session.scalar(
        select(LogTile.hashes).where(LogTile.level == level, LogTile.idx == index)
    )
    data = bytes(stored or b"")[: width * HASH_SIZE]
    if len(data) != width * HASH_SIZE:
        raise NotFound("no such tile in the published tree")
    return data


def entry_bundle(session: Session, index: int, width: int) -> bytes:
    """Entries ``index*256 .. +width`` as big-endian uint16 length-prefixed bytes."""
    if not 1 <= width <= TILE_WIDTH or tile_width(_published_size(session), 0, index) < width:
        raise NotFound("no such entry bundle in the published tree")
    first = index * TILE_WIDTH
    bodies = session.scalars(
        select(LogEntry.body)
        .where(LogEntry.seq >= first, LogEntry.seq < first + width)
        .order_by(LogEntry.seq)
    ).all()
    if len(bodies) != width:
        raise NotFound("entries of this bundle are missing")
    return b"".join(struct.pack(">H", len(body)) + bytes(body) for body in bodies)


def parse_hash(text: str) -> bytes:
    """A leaf hash in hex (64 digits) or base64."""
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("leaf_hash is 64 hex digits or base64 of 32 bytes") from exc
    if len(raw) != HASH_SIZE:
        raise BadRequest("leaf_hash is 32 bytes")
    return raw


@dataclass(frozen=True)
class Inclusion:
    leaf_index: int
    tree_size: int
    hashes: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "hashes": [base64.b64encode(h).decode() for h in self.hashes],
        }


def leaf_index(session: Session, leaf: bytes) -> int | None:
    """The index of a sequenced leaf with this hash (the first, should two be equal)."""
    return session.scalar(
        select(func.min(LogEntry.seq)).where(LogEntry.leaf_hash == leaf, LogEntry.seq.is_not(None))
    )


CARD_KINDS = ("certificate.issued", "certificate.reissued")


def card_leaf(session: Session, certificate_id: str) -> dict[str, Any] | None:
    """The leaf of a certificate's current card: its hash and, once sequenced, its index."""
    row = session.execute(
        select(LogEntry.leaf_hash, LogEntry.seq)
        .where(LogEntry.ref == certificate_id, LogEntry.kind.in_(CARD_KINDS))
        .order_by(LogEntry.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"leaf_hash": bytes(row[0]).hex(), "leaf_index": row[1]}


def inclusion(session: Session, leaf: bytes, tree_size: int | None = None) -> Inclusion:
    published = _published_size(session)
    if published == 0:
        raise NotFound("the log has no signed leaves yet")
    size = published if tree_size is None else tree_size
    if not 0 < size <= published:
        raise BadRequest(f"tree_size must be between 1 and {published}, a signed size")
    index = leaf_index(session, leaf)
    if index is None:
        if session.scalar(select(func.count()).where(LogEntry.leaf_hash == leaf)):
            raise NotFound("the leaf is not sequenced yet; ask again in a few seconds")
        raise NotFound("no such leaf in the log")
    if index >= size:
        raise NotFound(f"leaf {index} is not in a tree of {size} yet")
    return Inclusion(index, size, _tree(session, size).inclusion_proof(index, size))


def consistency(session: Session, first: int, second: int) -> list[bytes]:
    published = _published_size(session)
    if not 0 <= first <= second <= published:
        raise BadRequest(f"sizes must satisfy 0 <= first <= second <= {published}")
    try:
        return _tree(session, second).consistency_proof(first, second)
    except ProofError as exc:
        raise NotFound(str(exc)) from exc


def entry(session: Session, index: int) -> dict[str, Any]:
    if index >= _published_size(session):
        raise NotFound(f"no leaf {index} in the published tree")
    row = session.scalar(select(LogEntry).where(LogEntry.seq == index))
    if row is None:
        raise NotFound(f"leaf {index} is missing from the database")
    return {
        "leaf_index": index,
        "leaf_hash": row.leaf_hash.hex(),
        "entry": entries.decode(row.body),
    }


def add_cosignature(uow: UnitOfWork, *, note_text: str) -> int:
    """Store a registered witness's cosignature on one of our checkpoints; its size."""
    session = uow.session
    try:
        note = parse_note(note_text)
        checkpoint = Checkpoint.parse(note.text)
    except NoteError as exc:
        raise BadRequest(f"not a cosigned checkpoint: {exc}") from exc
    ours = session.get(LogCheckpoint, checkpoint.size)
    if ours is None or parse_note(ours.note).text != note.text:
        raise Conflict("this checkpoint was not signed by this log")
    witnesses = session.scalars(select(LogWitness)).all()
    stored = 0
    for witness in witnesses:
        verifier = Verifier.parse(witness.vkey)
        signature = signature_by(note, verifier)
        if signature is None:
            continue
        line = signature.line
        try:
            cosignature_time(note, verifier)
        except NoteError as exc:
            raise BadRequest(str(exc)) from exc
        duplicate = session.scalar(
            select(func.count()).where(
                LogCosignature.size == checkpoint.size, LogCosignature.line == line
            )
        )
        if not duplicate:
            session.add(
                LogCosignature(
                    size=checkpoint.size, witness=verifier.name, line=line, signed_at=utcnow()
                )
            )
            stored += 1
    if not stored and not any(s.name in {w.name for w in witnesses} for s in note.signatures):
        raise BadRequest("the note carries no cosignature by a registered witness")
    return checkpoint.size


def add_witness(uow: UnitOfWork, *, vkey: str) -> str:
    """Register a witness whose cosignatures are accepted; its name."""
    try:
        verifier = Verifier.parse(vkey)
    except NoteError as exc:
        raise BadRequest(f"witness key: {exc}") from exc
    if verifier.kind != 0x04:
        raise BadRequest("a witness key is a cosignature/v1 (type 0x04) key")
    existing = uow.session.get(LogWitness, verifier.name)
    if existing is not None:
        existing.vkey = vkey
    else:
        uow.session.add(LogWitness(name=verifier.name, vkey=vkey, added_at=utcnow()))
    return verifier.name

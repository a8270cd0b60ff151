"""A client of the log as any tlog-tiles client would be: checkpoint, tiles, entry bundles.

The witness (``registry log witness``) and the monitor (``registry log monitor``) use nothing
but the public files: they compute proofs from the tiles themselves and trust only the log's
pinned key and what they saw before.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.crypto.keys import write_private_file
from registry.crypto.merkle import (
    TILE_WIDTH,
    ProofError,
    TiledTree,
    leaf_hash,
    tile_path,
    verify_consistency,
)
from registry.crypto.notes import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    signature_by,
)
from registry.transparency.sequencer import tile_width

Fetch = Callable[[str], bytes]  # a path under the log's prefix ("checkpoint", "tile/0/000")
Post = Callable[[str, bytes], None]


class Refused(Exception):
    """What a witness or monitor will not accept, and why."""


class Undelivered(Exception):
    """A checkpoint accepted and cosigned whose cosignature the registry did not take."""


def http(base: str) -> tuple[Fetch, Post]:
    """Fetch and post under ``base`` (the registry's URL; the log lives at ``/log/``)."""
    prefix = base.rstrip("/") + "/log/"

    def fetch(path: str) -> bytes:
        try:
            with urllib.request.urlopen(prefix + path, timeout=15) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise Refused(f"{prefix + path}: HTTP {exc.code}") from exc
        except OSError as exc:
            raise Refused(f"{prefix + path}: {exc}") from exc

    def post(path: str, body: bytes) -> None:
        request = urllib.request.Request(
            prefix + path, data=body, headers={"Content-Type": "text/plain"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=15):
                return
        except (urllib.error.HTTPError, OSError) as exc:
            raise Refused(f"{prefix + path}: {exc}") from exc

    return fetch, post


def tree_of(fetch: Fetch, size: int) -> TiledTree:
    """The tree of ``size`` leaves read from the log's tiles (the widths that size needs)."""

    def load(level: int, index: int) -> bytes:
        width = tile_width(size, level, index)
        return fetch(tile_path(level, index, width)) if width else b""

    return TiledTree(size, load)


def entries(fetch: Fetch, tree: TiledTree, start: int, end: int) -> list[tuple[int, bytes]]:
    """Entries ``start..end-1``, each checked against its leaf in the tree."""
    found: list[tuple[int, bytes]] = []
    for index in range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH if end else 0):
        width = tile_width(tree.size, 0, index)
        raw = fetch(tile_path("entries", index, width))
        position = 0
        for n in range(width):
            if position + 2 > len(raw):
                raise Refused(f"entry bundle {index} is cut short")
            (length,) = struct.unpack(">H", raw[position : position + 2])
            body = raw[position + 2 : position + 2 + length]
            position += 2 + length
            seq = index * TILE_WIDTH + n
            if leaf_hash(body) != tree.leaf(seq):
                raise Refused(f"entry {seq} does not hash to its leaf")
            if start <= seq < end:
                found.append((seq, body))
    return found


def _latest(fetch: Fetch, log_key: Verifier) -> tuple[Checkpoint, str]:
    """The latest checkpoint, checked against its tiles; and the note as signed by the log."""
    raw = fetch("checkpoint")
    try:
        checkpoint, note = open_checkpoint(raw, log_key)
    except NoteError as exc:
        raise Refused(f"the checkpoint does not verify: {exc}") from exc
    tree = tree_of(fetch, checkpoint.size)
    if checkpoint.size and tree.root() != checkpoint.root:
        raise Refused("the tiles do not give the checkpoint's root")
    signature = signature_by(note, log_key)  # open_checkpoint verified it: it is there
    assert signature is not None
    return checkpoint, note.text + "\n" + signature.line


def check_extends(fetch: Fetch, old: Checkpoint, new: Checkpoint) -> None:
    """Refuse a checkpoint that is not an append-only extension of one accepted before."""
    if new.size < old.size:
        raise Refused(
            f"truncated: the log now shows {new.size} leaves, {old.size} were accepted before"
        )
    if new.size == old.size:
        if new.root != old.root:
            raise Refused(f"fork: another tree of size {new.size} than the one accepted before")
        return
    tree = tree_of(fetch, new.size)
    try:
        proof = tree.consistency_proof(old.size)
        verify_consistency(old.size, new.size, proof, old.root, new.root)
    except ProofError as exc:
        raise Refused(
            f"fork or rewrite: the tree of {new.size} does not extend the accepted tree of "
            f"{old.size} ({exc})"
        ) from exc


@dataclass
class WitnessState:
    """A witness's folder: its key, the log's pinned key, the last checkpoint it accepted."""

    folder: Path

    def signer(self, name: str) -> Signer:
        path = self.folder / "witness.key"
        if not path.exists():
            write_private_file(path, base64.b64encode(os.urandom(32)) + b"\n")
        seed = base64.b64decode(path.read_text("ascii").strip())
        return Signer.from_seed(name, seed, kind=COSIGNATURE_V1)

    def log_key(self, given: str | None, fetch: Fetch) -> Verifier:
        path = self.folder / "log.vkey"
        if path.exists():
            pinned = path.read_text("utf-8").strip()
            if given and given.strip() != pinned:
                raise Refused("the given log key differs from the one pinned in the state folder")
            return Verifier.parse(pinned)
        text = given or fetch("key").decode().strip()
        verifier = Verifier.parse(text)
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", "utf-8")
        return verifier

    def accepted(self, log_key: Verifier) -> Checkpoint | None:
        path = self.folder / "checkpoint"
        if not path.exists():
            return None
        checkpoint, _ = open_checkpoint(path.read_text("utf-8"), log_key)
        return checkpoint

    def accept(self, note: str) -> None:
        path = self.folder / "checkpoint"
        partial = path.with_suffix(".new")
        partial.write_text(note, "utf-8")
        partial.replace(path)


def witness(
    state: WitnessState,
    fetch: Fetch,
    post: Post | None,
    *,
    name: str,
    log_key: str | None = None,
    now: int | None = None,
) -> tuple[Checkpoint, str]:
    """Check the log's latest checkpoint against the one accepted before; cosign it.

    Returns the checkpoint and the cosigned note (sent back to the log when ``post`` is given).
    """
    verifier = state.log_key(log_key, fetch)
    checkpoint, signed = _latest(fetch, verifier)
    before = state.accepted(verifier)
    if before is not None:
        check_extends(fetch, before, checkpoint)
    signer = state.signer(name)
    timestamp = int(time.time()) if now is None else now
    cosigned = signed + signer.signature_line(checkpoint.text(), timestamp=timestamp)
    state.accept(signed)
    if post is not None:
        try:
            post("cosignatures", cosigned.encode())
        except Refused as exc:
            # the checkpoint holds and is accepted; only the delivery failed (say, a witness
            # the registry has not registered yet): the caller is told, the state is kept
            raise Undelivered(str(exc)) from exc
    return checkpoint, cosigned


@dataclass
class MonitorReport:
    """What appeared in the log since the monitor last looked."""

    first: int
    size: int
    issued: Counter[str]
    events: list[str]


WATCHED = ("clinic.status", "clinic.key", "registry.key")


def monitor(
    fetch: Fetch, *, log_key: Verifier, country: str, since: Checkpoint | None
) -> tuple[MonitorReport, Checkpoint, str]:
    """Follow the log from ``since``: issuance per clinic of ``country``, key and clinic events."""
    checkpoint, signed = _latest(fetch, log_key)
    if since is not None:
        check_extends(fetch, since, checkpoint)
    start = since.size if since is not None else 0
    tree = tree_of(fetch, checkpoint.size)
    issued: Counter[str] = Counter()
    events: list[str] = []
    for seq, body in entries(fetch, tree, start, checkpoint.size):
        fields: dict[str, Any] = json.loads(body)
        kind = fields.get("type")
        mine = fields.get("country") == country
        if kind == "certificate.issued" and mine:
            issued[str(fields["clinic"])] += 1
        elif kind in WATCHED and (mine or kind == "registry.key" or "country" not in fields):
            detail = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "type")
            events.append(f"leaf {seq}: {kind} {detail}")
        elif kind == "ruleset.published":
            events.append(
                f"leaf {seq}: ruleset {fields['destination']} v{fields['version']} "
                f"sha256={fields['sha256']}"
            )
    return MonitorReport(start, checkpoint.size, issued, events), checkpoint, signed

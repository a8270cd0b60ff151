"""Append leaves to the log: one plain INSERT in the caller's transaction, no lock.

What commits is integrated by the sequencer (``sequencer.py``) in the order it becomes
visible; what rolls back never appears. Every entry is public: certificate, clinic, key,
ruleset, trust-list and surveillance-release entries in full (never personal data or
results), audit events as a commitment only (``registry/audit``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from registry.crypto.canonical import canonical_json
from registry.crypto.merkle import leaf_hash
from registry.db import stage_rows
from registry.transparency.models import LogEntry

_TABLE: Table = LogEntry.__table__  # type: ignore[assignment]
_INSERT = insert(_TABLE)


@dataclass(frozen=True)
class Leaf:
    """An entry as it goes into the log: its kind, what it names, and its canonical bytes."""

    kind: str
    body: bytes
    ref: str | None = None

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.body)


def leaf(kind: str, fields: dict[str, Any], *, ref: str | None = None) -> Leaf:
    """An entry ``{"type": kind, ...fields}`` in RFC 8785 form."""
    return Leaf(kind, canonical_json({"type": kind, **fields}), ref)


def append(session: Session, leaves: Sequence[Leaf], *, at: datetime) -> list[bytes]:
    """Write entries in the session's transaction; their leaf hashes, in order."""
    if not leaves:
        return []
    rows = [row(item, at=at) for item in leaves]
    # inside an event's subscribers the leaves go in with the others of the event, at its end
    if not stage_rows(session, _TABLE, rows):
        session.connection().execute(_INSERT, rows)
    return [item.hash for item in leaves]


def row(item: Leaf, *, at: datetime) -> dict[str, Any]:
    """The ``log_entries`` row of an entry not yet sequenced (for writers that batch rows)."""
    return {
        "kind": item.kind,
        "ref": item.ref,
        "body": item.body,
        "leaf_hash": item.hash,
        "seq": None,
        "created_at": at,
    }


TABLE = _TABLE


def decode(body: bytes) -> dict[str, Any]:
    """An entry's fields (the log only ever holds JSON objects it wrote)."""
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("a log entry is a JSON object")
    return value

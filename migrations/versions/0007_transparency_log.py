"""transparency log: entries, tiles, checkpoints, cosignatures, witnesses, the sequencer's state;
audit events committed to the log instead of hash-chained

Existing audit events become the first leaves, in their order: each gets a random salt and a
leaf holding the commitment to its content, exactly as new events do. The chain's columns go.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import hashlib
import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db
from registry.crypto.canonical import canonical_json

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_entries")),
        sa.UniqueConstraint("seq", name=op.f("uq_log_entries_seq")),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_entries_ref"), ["ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_log_entries_leaf_hash"), ["leaf_hash"], unique=False)
        batch_op.create_index(
            "ix_log_entries_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("seq IS NULL"),
            sqlite_where=sa.text("seq IS NULL"),
        )
    op.create_table(
        "log_tiles",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_log_tiles")),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_log_checkpoints")),
    )
    op.create_table(
        "log_cosignatures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("signed_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_cosignatures")),
    )
    with op.batch_alter_table("log_cosignatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_cosignatures_size"), ["size"], unique=False)
    op.create_table(
        "log_witnesses",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("vkey", sa.Text(), nullable=False),
        sa.Column("added_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_log_witnesses")),
    )
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_until", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_state")),
    )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("salt", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=True))
    _commit_existing_events()
    _log_existing_certificates()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("salt", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("leaf_hash", existing_type=sa.LargeBinary(length=32), nullable=False)
        batch_op.create_index(batch_op.f("ix_audit_events_leaf_hash"), ["leaf_hash"], unique=False)
        batch_op.drop_constraint("uq_audit_events_hash", type_="unique")
        batch_op.drop_constraint("uq_audit_events_prev_hash", type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")


_EVENTS = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("at", registry.db.UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("role", sa.String()),
    sa.column("jurisdiction", sa.String()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("purpose_of_use", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("detail", sa.JSON()),
    sa.column("salt", sa.String()),
    sa.column("leaf_hash", sa.LargeBinary()),
)
_ENTRIES = sa.table(
    "log_entries",
    sa.column("kind", sa.String()),
    sa.column("ref", sa.String()),
    sa.column("body", sa.LargeBinary()),
    sa.column("leaf_hash", sa.LargeBinary()),
    sa.column("seq", sa.BigInteger()),
    sa.column("created_at", registry.db.UTCDateTime()),
)


def _commit_existing_events() -> None:
    """Each existing event, in id order: a salt, and a leaf committing to its content."""
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(_EVENTS).where(_EVENTS.c.id > last).order_by(_EVENTS.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        entries = []
        for row in rows:
            salt = os.urandom(16).hex()
            content = {
                "at": row.at.isoformat(),
                "actor": row.actor,
                "role": row.role,
                "jurisdiction": row.jurisdiction,
                "action": row.action,
                "object_type": row.object_type,
                "object_id": row.object_id,
                "purpose_of_use": row.purpose_of_use,
                "outcome": row.outcome,
                "detail": row.detail or {},
                "salt": salt,
            }
            commitment = hashlib.sha256(canonical_json(content)).hexdigest()
            body = canonical_json({"type": "audit", "commitment": commitment})
            leaf = hashlib.sha256(b"\x00" + body).digest()
            connection.execute(
                sa.update(_EVENTS).where(_EVENTS.c.id == row.id).values(salt=salt, leaf_hash=leaf)
            )
            entries.append(
                {
                    "kind": "audit",
                    "ref": None,
                    "body": body,
                    "leaf_hash": leaf,
                    "seq": None,
                    "created_at": row.at,
                }
            )
        connection.execute(sa.insert(_ENTRIES), entries)
        last = rows[-1].id


_REASONS = (
    "key-compromise",
    "ruleset-changed",
    "amended",
    "withdrawn",
    "entered-in-error",
    "clinic-suspended",
    "clinic-withdrawn",
)


def _reason(text: str | None) -> str:
    head = (text or "").split(":", 1)[0].strip().lower()
    return head if head in _REASONS else "revoked"


def _leaf(kind: str, fields: dict, ref: str, at: object) -> dict:
    body = canonical_json({"type": kind, **fields})
    return {
        "kind": kind,
        "ref": ref,
        "body": body,
        "leaf_hash": hashlib.sha256(b"\x00" + body).digest(),
        "seq": None,
        "created_at": at,
    }


def _log_existing_certificates() -> None:
    """Certificates and revocation-list entries issued so far, as the log records new ones."""
    connection = op.get_bind()
    certificates = sa.table(
        "certificates",
        *(sa.column(name) for name in ("id", "kid", "rid", "destination", "purpose", "clinic_id")),
        sa.column("valid_from", sa.Date()),
        sa.column("valid_until", sa.Date()),
        sa.column("ruleset_version", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("status_reason", sa.Text()),
        sa.column("issued_at", registry.db.UTCDateTime()),
        sa.column("revoked_at", registry.db.UTCDateTime()),
    )
    revocations = sa.table(
        "certificate_revocations",
        *(sa.column(name) for name in ("certificate_id", "kid", "rid", "reason")),
        sa.column("revoked_at", registry.db.UTCDateTime()),
    )
    leaves = []
    for row in connection.execute(sa.select(certificates).order_by(certificates.c.issued_at)):
        fields = {
            "certificate": row.id,
            "kid": row.kid,
            "rid": row.rid,
            "destination": row.destination,
            "purpose": row.purpose,
            "valid_from": row.valid_from.isoformat(),
            "valid_until": row.valid_until.isoformat(),
            "clinic": row.clinic_id,
            "country": row.clinic_id[:2],
            "ruleset_version": row.ruleset_version,
            "at": row.issued_at.isoformat(),
        }
        leaves.append(_leaf("certificate.issued", fields, row.id, row.issued_at))
        if row.status in ("revoked", "superseded"):
            ended = {
                "certificate": row.id,
                "reason": _reason(row.status_reason),
                "clinic": row.clinic_id,
                "country": row.clinic_id[:2],
                "at": row.revoked_at.isoformat(),
            }
            leaves.append(_leaf(f"certificate.{row.status}", ended, row.id, row.revoked_at))
    for row in connection.execute(sa.select(revocations).order_by(revocations.c.revoked_at)):
        fields = {
            "certificate": row.certificate_id,
            "kid": row.kid,
            "rid": row.rid,
            "reason": _reason(row.reason),
            "at": row.revoked_at.isoformat(),
        }
        leaves.append(_leaf("card.revoked", fields, row.certificate_id, row.revoked_at))
    for start in range(0, len(leaves), BATCH):
        connection.execute(sa.insert(_ENTRIES), leaves[start : start + BATCH])


def downgrade() -> None:
    raise NotImplementedError(
        "the audit chain cannot be rebuilt from the log: restore the backup taken before upgrading"
    )

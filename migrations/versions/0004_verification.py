"""verification: the holders' verification log and external SMART Health Card issuers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_issuers",
        sa.Column("iss", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("jwks", sa.JSON(), nullable=False),
        sa.Column("crl", sa.JSON(), nullable=False),
        sa.Column("crl_updated_at", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("added_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("iss", name=op.f("pk_external_issuers")),
    )
    op.create_table(
        "verification_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("certificate_id", sa.String(length=16), nullable=False),
        sa.Column("verified_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(length=24), nullable=False),
        sa.Column("verifier_name", sa.String(length=200), nullable=True),
        sa.Column("verifier_role", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_verification_events_certificate_id_certificates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_events")),
    )
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_verification_events_certificate_id"), ["certificate_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_events_certificate_id"))
    op.drop_table("verification_events")
    op.drop_table("external_issuers")

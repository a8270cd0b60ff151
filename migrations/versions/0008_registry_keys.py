"""registry keys: the status of the registry's own signing keys, read by every worker

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("compromised_since", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("changed_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_registry_keys")),
    )
    with op.batch_alter_table("registry_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_keys_purpose"), ["purpose"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("registry_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_keys_purpose"))
    op.drop_table("registry_keys")

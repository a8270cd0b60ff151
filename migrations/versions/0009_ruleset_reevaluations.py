"""ruleset re-evaluations: judging issued certificates again by a version that applies to them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ruleset_reevaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("not_before", sa.Date(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Integer(), nullable=False),
        sa.Column("after", sa.String(length=16), nullable=True),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ruleset_reevaluations")),
        sa.UniqueConstraint(
            "destination", "version", name=op.f("uq_ruleset_reevaluations_destination")
        ),
    )
    with op.batch_alter_table("ruleset_reevaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ruleset_reevaluations_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ruleset_reevaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ruleset_reevaluations_state"))

    op.drop_table("ruleset_reevaluations")

"""surveillance: counts kept at write time and each version's sealed contribution

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "surveillance_counts",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("origin", sa.String(length=2), nullable=False),
        sa.Column("destination", sa.String(length=4), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=False),
        sa.Column("examined", sa.Integer(), nullable=False),
        sa.Column("cxr_suggestive_tb", sa.Integer(), nullable=False),
        sa.Column("tb_bact_confirmed", sa.Integer(), nullable=False),
        sa.Column("tb_rif_resistant", sa.Integer(), nullable=False),
        sa.Column("hiv_reactive_screening", sa.Integer(), nullable=False),
        sa.Column("hiv_confirmed", sa.Integer(), nullable=False),
        sa.Column("syphilis_reactive", sa.Integer(), nullable=False),
        sa.Column("referrals_made", sa.Integer(), nullable=False),
        sa.Column("referrals_completed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month",
            "origin",
            "destination",
            "purpose",
            "sex",
            "age_band",
            name=op.f("pk_surveillance_counts"),
        ),
    )
    op.create_table(
        "surveillance_tallies",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["examination_versions.id"],
            name=op.f("fk_surveillance_tallies_version_id_examination_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_surveillance_tallies")),
    )
    op.create_table(
        "surveillance_protections",
        sa.Column("data_version", sa.String(length=64), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("cells", sa.Integer(), nullable=False),
        sa.Column("status", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("data_version", "k", name=op.f("pk_surveillance_protections")),
    )


def downgrade() -> None:
    op.drop_table("surveillance_protections")
    op.drop_table("surveillance_tallies")
    op.drop_table("surveillance_counts")

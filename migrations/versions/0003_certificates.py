"""certificates: ruleset versions, certificates, their cards and revocations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rulesets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("loaded_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rulesets")),
        sa.UniqueConstraint("destination", "version", name=op.f("uq_rulesets_destination")),
    )
    with op.batch_alter_table("rulesets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rulesets_destination"), ["destination"], unique=False)

    op.create_table(
        "certificates",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("examination_id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("clinic_id", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("ruleset_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("base_valid_until", sa.Date(), nullable=False),
        sa.Column("issued_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", registry.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("rid", sa.String(length=24), nullable=False),
        sa.Column("signed_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sealed_jws", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_holder", sa.LargeBinary(), nullable=False),
        sa.Column("holder_secret_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_certificates_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["examination_id"],
            ["examinations.id"],
            name=op.f("fk_certificates_examination_id_examinations"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_certificates_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["examination_versions.id"],
            name=op.f("fk_certificates_version_id_examination_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_certificates_examination_id"), ["examination_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_certificates_holder_secret_hash"), ["holder_secret_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_certificates_kid"), ["kid"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_certificates_version_id"), ["version_id"], unique=False
        )

    op.create_table(
        "certificate_cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("certificate_id", sa.String(length=16), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("rid", sa.String(length=24), nullable=False),
        sa.Column("signed_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_cards_certificate_id_certificates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_cards")),
    )
    with op.batch_alter_table("certificate_cards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_cards_certificate_id"), ["certificate_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_certificate_cards_kid"), ["kid"], unique=False)

    op.create_table(
        "certificate_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("certificate_id", sa.String(length=16), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("rid", sa.String(length=24), nullable=False),
        sa.Column("revoked_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_revocations_certificate_id_certificates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_revocations")),
    )
    with op.batch_alter_table("certificate_revocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_revocations_certificate_id"),
            ["certificate_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_certificate_revocations_kid"), ["kid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificate_revocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_revocations_kid"))
        batch_op.drop_index(batch_op.f("ix_certificate_revocations_certificate_id"))

    op.drop_table("certificate_revocations")
    with op.batch_alter_table("certificate_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_cards_kid"))
        batch_op.drop_index(batch_op.f("ix_certificate_cards_certificate_id"))

    op.drop_table("certificate_cards")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_version_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_status"))
        batch_op.drop_index(batch_op.f("ix_certificates_person_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_kid"))
        batch_op.drop_index(batch_op.f("ix_certificates_holder_secret_hash"))
        batch_op.drop_index(batch_op.f("ix_certificates_examination_id"))
        batch_op.drop_index(batch_op.f("ix_certificates_clinic_id"))

    op.drop_table("certificates")
    with op.batch_alter_table("rulesets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rulesets_destination"))

    op.drop_table("rulesets")

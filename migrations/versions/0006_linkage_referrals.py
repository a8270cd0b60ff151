"""linkage and referrals: name keys, proposed matches, dependants, referrals, history consent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_name_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_person_name_keys_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_name_keys")),
        sa.UniqueConstraint("person_id", "name_key", name=op.f("uq_person_name_keys_person_id")),
    )
    with op.batch_alter_table("person_name_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_name_keys_name_key"), ["name_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_name_keys_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "person_relations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dependant_id", sa.String(length=32), nullable=False),
        sa.Column("worker_id", sa.String(length=32), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("examination_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dependant_id"], ["persons.id"], name=op.f("fk_person_relations_dependant_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["examination_id"],
            ["examinations.id"],
            name=op.f("fk_person_relations_examination_id_examinations"),
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["persons.id"], name=op.f("fk_person_relations_worker_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_relations")),
        sa.UniqueConstraint(
            "dependant_id", "worker_id", name=op.f("uq_person_relations_dependant_id")
        ),
    )
    with op.batch_alter_table("person_relations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_relations_dependant_id"), ["dependant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_relations_examination_id"), ["examination_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_relations_worker_id"), ["worker_id"], unique=False
        )

    op.create_table(
        "proposed_matches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("candidate_id", sa.String(length=32), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("examination_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["persons.id"], name=op.f("fk_proposed_matches_candidate_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["examination_id"],
            ["examinations.id"],
            name=op.f("fk_proposed_matches_examination_id_examinations"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_proposed_matches_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposed_matches")),
        sa.UniqueConstraint(
            "person_id", "candidate_id", name=op.f("uq_proposed_matches_person_id")
        ),
    )
    with op.batch_alter_table("proposed_matches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposed_matches_candidate_id"), ["candidate_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_proposed_matches_examination_id"), ["examination_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_proposed_matches_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "referrals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("examination_id", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("referring_clinic_id", sa.String(length=32), nullable=False),
        sa.Column("facility_id", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", registry.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["examination_id"],
            ["examinations.id"],
            name=op.f("fk_referrals_examination_id_examinations"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_referrals_person_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["referring_clinic_id"],
            ["clinics.id"],
            name=op.f("fk_referrals_referring_clinic_id_clinics"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referrals_examination_id"), ["examination_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_referrals_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referrals_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_referrals_referring_clinic_id"), ["referring_clinic_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_referrals_status"), ["status"], unique=False)

    with op.batch_alter_table("examinations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("history_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("examinations", schema=None) as batch_op:
        batch_op.drop_column("history_consent")

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_status"))
        batch_op.drop_index(batch_op.f("ix_referrals_referring_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_referrals_person_id"))
        batch_op.drop_index(batch_op.f("ix_referrals_facility_id"))
        batch_op.drop_index(batch_op.f("ix_referrals_examination_id"))

    op.drop_table("referrals")
    with op.batch_alter_table("proposed_matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposed_matches_person_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_matches_examination_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_matches_candidate_id"))

    op.drop_table("proposed_matches")
    with op.batch_alter_table("person_relations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_relations_worker_id"))
        batch_op.drop_index(batch_op.f("ix_person_relations_examination_id"))
        batch_op.drop_index(batch_op.f("ix_person_relations_dependant_id"))

    op.drop_table("person_relations")
    with op.batch_alter_table("person_name_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_name_keys_person_id"))
        batch_op.drop_index(batch_op.f("ix_person_name_keys_name_key"))

    op.drop_table("person_name_keys")

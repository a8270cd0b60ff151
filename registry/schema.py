"""Imports every capability's tables so ``Base.metadata`` is complete, and runs migrations."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from registry.accreditation import models as accreditation_models
from registry.audit import models as audit_models
from registry.auth import models as auth_models
from registry.certificates import models as certificate_models
from registry.crypto import models as crypto_models
from registry.crypto.reseal import SealedColumn
from registry.db import Base
from registry.examinations import models as examination_models
from registry.referrals import models as referral_models
from registry.surveillance import models as surveillance_models
from registry.verification import models as verification_models

MODELS = (
    crypto_models,
    accreditation_models,
    audit_models,
    auth_models,
    examination_models,
    referral_models,
    certificate_models,
    verification_models,
    surveillance_models,
)
metadata = Base.metadata


def migrations_dir() -> Path:
    """The Alembic folder: ``REGISTRY_MIGRATIONS_DIR``, or ``migrations/`` beside the package."""
    configured = os.environ.get("REGISTRY_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[1] / "migrations"
    return beside if beside.is_dir() else Path.cwd() / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for one database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (the only way the schema is created)."""
    command.upgrade(alembic_config(database_url), revision)


def sealed_columns() -> tuple[SealedColumn, ...]:
    """Every column of sealed values, with what each value is bound to: what ``registry seal
    reseal`` goes through. A new sealed column belongs here (a test holds the list to the
    schema)."""
    from registry.accreditation.status import signing_key_context
    from registry.certificates.holders import card_context, holder_context
    from registry.examinations.persons import sealed_context
    from registry.examinations.sealed import bundle_context, outcome_context
    from registry.surveillance.service import _context as tally_context

    certificate = certificate_models.Certificate
    person = examination_models.Person
    return (
        SealedColumn(certificate, "sealed_holder", lambda row: holder_context(row.id)),
        SealedColumn(certificate, "sealed_jws", lambda row: card_context(row.id)),
        SealedColumn(
            examination_models.ExaminationVersion,
            "sealed_bundle",
            lambda row: bundle_context(row.examination_id, row.version),
        ),
        SealedColumn(person, "sealed_identity", lambda row: sealed_context(row.id, "identity")),
        SealedColumn(person, "sealed_photo", lambda row: sealed_context(row.id, "photo")),
        SealedColumn(
            accreditation_models.SigningKey,
            "sealed_private_jwk",
            lambda row: signing_key_context(row.kid),
        ),
        SealedColumn(
            surveillance_models.SurveillanceTally,
            "sealed",
            lambda row: tally_context(row.version_id),
        ),
        SealedColumn(
            examination_models.TestResult,
            "sealed_outcome",
            lambda row: outcome_context(
                row.version.examination_id, row.version.version, row.concept
            ),
        ),
    )

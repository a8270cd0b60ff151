"""The schema comes only from Alembic, and the migrations match the models exactly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from registry.schema import metadata
from tests.support import World

pytestmark = pytest.mark.postgres  # the migrations must build the same schema on both databases


@pytest.mark.committed
def test_migrations_match_the_models(world: World) -> None:
    with world.ctx.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


@pytest.mark.committed
def test_jurisdictions_are_seeded_by_the_first_migration(world: World) -> None:
    with world.ctx.db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT code FROM jurisdictions ORDER BY code").all()
        tables = set(inspect(connection).get_table_names())
    assert [r[0] for r in rows] == ["KG", "KZ", "RU", "TJ", "TM", "UZ"]
    assert "alembic_version" in tables

"""The surveillance worker and the protect command compute with no write lock held, so requests
keep writing meanwhile.

On SQLite one write lock serves the whole database, and every audited request needs it; a
pattern that takes a minute to compute inside a write transaction made every request of
`make run` wait 30 seconds and answer 503.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import make_url

from registry.cli import main
from registry.surveillance import service
from registry.surveillance.models import SurveillanceProtection
from registry.surveillance.service import add_microcells, closed_through
from registry.surveillance.synthetic import population
from tests.support import World


@pytest.fixture
def lock_watch(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """Two closed months of counts this year, and `protect` checking that the write lock is
    free while it computes: the year, and one entry per computation that saw it free."""
    ctx = world.ctx
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    year = closed_through(datetime.now(UTC)).year
    with ctx.db.unit_of_work() as uow:
        add_microcells(uow.session, population(1, year=year, months=2, per_month=300))
        uow.commit()
    path = make_url(ctx.settings.database_url).database
    seen: list[str] = []
    real = service.protect

    def protect_while_someone_writes(cube: Any, **options: Any) -> Any:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the lock were held
            other.execute("ROLLBACK")
            seen.append("written meanwhile")
        finally:
            other.close()
        return real(cube, **options)

    monkeypatch.setattr(service, "protect", protect_while_someone_writes)
    return year, seen


@pytest.mark.committed
def test_a_request_can_take_the_write_lock_while_a_pattern_is_computed(
    world: World, lock_watch: tuple[int, list[str]]
) -> None:
    year, seen = lock_watch
    done = service.protect_outstanding(world.ctx.db, now=datetime.now(UTC))
    assert [d.year for d in done] == [year]
    assert seen == ["written meanwhile"]


@pytest.mark.committed
def test_the_protect_command_computes_with_no_write_lock_held(
    world: World, lock_watch: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    year, seen = lock_watch
    settings = world.ctx.settings
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", settings.database_url)

    result = CliRunner().invoke(main, ["surveillance", "protect", "--year", str(year)])

    assert result.exit_code == 0, result.output
    assert seen == ["written meanwhile"]
    with world.ctx.db.read_session() as session:
        stored = session.scalars(select(SurveillanceProtection.data_version)).all()
    assert len(stored) == 1 and stored[0].startswith(f"{year}:")
    assert f"{year}: pattern for data version {stored[0]} at k=5" in result.output
    again = CliRunner().invoke(main, ["surveillance", "protect", "--year", str(year)])
    assert again.exit_code == 0 and seen == ["written meanwhile"]  # stored: nothing computed

"""The surveillance worker computes with no write lock held, so requests keep writing meanwhile.

On SQLite one write lock serves the whole database, and every audited request needs it; a
pattern that takes a minute to compute inside a write transaction made every request of
`make run` wait 30 seconds and answer 503.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from registry.surveillance import service
from registry.surveillance.service import add_microcells, closed_through
from registry.surveillance.synthetic import population
from tests.support import World


@pytest.mark.committed
def test_a_request_can_take_the_write_lock_while_a_pattern_is_computed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = world.ctx
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    now = datetime.now(UTC)
    year = closed_through(now).year
    with ctx.db.unit_of_work() as uow:
        add_microcells(uow.session, population(1, year=year, months=2, per_month=300))
        uow.commit()
    path = make_url(ctx.settings.database_url).database
    seen: list[str] = []
    real = service.protect

    def protect_while_someone_writes(cube: Any, **options: Any) -> Any:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the worker held the lock
            other.execute("ROLLBACK")
            seen.append("written meanwhile")
        finally:
            other.close()
        return real(cube, **options)

    monkeypatch.setattr(service, "protect", protect_while_someone_writes)
    done = service.protect_outstanding(ctx.db, now=now)
    assert [d.year for d in done] == [year]
    assert seen == ["written meanwhile"]

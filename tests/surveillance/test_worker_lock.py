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

# the clock of these tests: January and February 2026 closed (the cost of a pattern grows with
# the months closed, a whole quarter costing twenty times two months; no test runs on today's date)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def lock_watch(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """Two closed months of counts at NOW, and `protect` checking that the write lock is
    free while it computes: the year, and one entry per computation that saw it free."""
    ctx = world.ctx
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock")
    year = closed_through(NOW).year
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
    done = service.protect_outstanding(world.ctx.db, now=NOW)
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
    monkeypatch.setattr("registry.db.utcnow", lambda: NOW)  # the command's clock

    result = CliRunner().invoke(main, ["surveillance", "protect", "--year", str(year)])

    assert result.exit_code == 0, result.output
    assert seen == ["written meanwhile"]
    with world.ctx.db.read_session() as session:
        stored = session.scalars(select(SurveillanceProtection.data_version)).all()
    assert len(stored) == 1 and stored[0].startswith(f"{year}:")
    assert f"{year}: pattern for data version {stored[0]} at k=5" in result.output
    again = CliRunner().invoke(main, ["surveillance", "protect", "--year", str(year)])
    assert again.exit_code == 0 and seen == ["written meanwhile"]  # stored: nothing computed


def test_a_threshold_added_to_counts_protected_by_method_1_1_is_computed_by_1_1(
    world: World,
) -> None:
    import zlib

    from registry.surveillance.cube import MEASURES
    from registry.surveillance.disclosure import protect, protect_greedy
    from registry.surveillance.witness import PUBLISHED

    db = world.ctx.db
    now = NOW
    year = closed_through(now).year
    with db.unit_of_work() as uow:
        add_microcells(uow.session, population(3, year=year, months=2, per_month=300))
        uow.commit()
    with db.reading() as reader:
        plan = service._plan(reader.session, year=year, now=now)
        ((key, cube, _prices),) = service._patterns(plan)[1]
    assert service.protect_year(db, year=year, k=5, now=now).patterns == 1
    with db.reading() as reader:
        assert not service._legacy_siblings(reader.session, key)  # stored by 1.2, marked
        stored = service._stored_protection(reader.session, cube, version=key, k=5)
    assert stored is not None
    # the same counts as a release before 1.2 stored them: method 1.1, no mark
    legacy = protect_greedy(cube, k=5)
    legacy_at_4 = protect_greedy(cube, k=4)
    # the methods differ on these counts, at both thresholds (1.2's k=5 pattern is the stored one)
    assert legacy.status != stored.status
    assert protect(cube, k=4).status != legacy_at_4.status
    with db.unit_of_work() as uow:
        row = uow.session.get(SurveillanceProtection, (key, 5))
        assert row is not None
        row.status = zlib.compress(b"".join(legacy.status[m] for m in MEASURES))
        uow.commit()

    assert service.protect_year(db, year=year, k=4, now=now).patterns == 1

    with db.reading() as reader:
        at_5 = service._stored_protection(reader.session, cube, version=key, k=5)
        at_4 = service._stored_protection(reader.session, cube, version=key, k=4)
    assert at_5 is not None and at_4 is not None
    assert at_5.status == legacy.status
    assert at_4.status == legacy_at_4.status
    for m in MEASURES:  # nested: whatever k=4 withholds, k=5 withholds too
        assert all(
            five != PUBLISHED
            for four, five in zip(at_4.status[m], at_5.status[m], strict=True)
            if four
        )

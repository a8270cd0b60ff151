"""Counts kept in the examination's transaction: submissions, amendments, withdrawals, rebuild."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from registry.cli import main
from registry.errors import InvalidResource
from registry.examinations.examples import Migrant, examination_bundle
from registry.surveillance import service
from registry.surveillance.models import SurveillanceTally
from registry.surveillance.rebuild import rebuild
from registry.surveillance.tally import age_band
from tests.certificates.builders import amend, load_rulesets, submit, withdraw
from tests.support import World

pytestmark = pytest.mark.postgres  # counts are kept with an upsert whose SQL differs by database

AUGUST = date(2026, 8, 12)
WOMAN = Migrant(
    family=("Rahimova", "Рахимова"),
    given=("Zarina", "Зарина"),
    patronymic=None,
    sex="female",
    birth_date=date(1990, 5, 1),
    passport="401234567",
    citizenship="TJ",
)


@pytest.fixture
def world(app: Flask) -> World:
    load_rulesets(app)
    world = World(app)
    world.clinic("TJ-DUS-0007")
    world.clinic("KG-BIS-0002")
    return world


def stored_counts(world: World) -> dict[tuple[str, ...], dict[str, int]]:
    with world.ctx.db.read_session() as session:
        return service.counts(session)


def nonzero(cells: dict[tuple[str, ...], dict[str, int]]) -> dict[tuple[str, ...], dict[str, int]]:
    return {key: {m: v for m, v in values.items() if v} for key, values in cells.items()}


def test_age_bands_follow_the_official_statistics() -> None:
    assert age_band(date(2009, 8, 13), AUGUST) == "<18"  # 17 the day before the birthday
    assert age_band(date(2008, 8, 12), AUGUST) == "18-29"
    assert age_band(date(1996, 8, 13), AUGUST) == "18-29"
    assert age_band(date(1996, 8, 12), AUGUST) == "30-59"
    assert age_band(date(1966, 8, 12), AUGUST) == "60+"


def test_a_submission_counts_its_findings_in_its_microcell(world: World) -> None:
    submit(
        world,
        number="2026-S-1",
        examined_on=AUGUST,
        outcomes={"hiv-screening": "positive", "chest-xray": "abnormal-tb"},
        migrant=WOMAN,
        destination="KZ",
    )
    submit(world, number="2026-S-2", examined_on=AUGUST, destination="KZ", passport="409999999")

    cells = nonzero(stored_counts(world))
    woman = ("2026-08", "TJ", "KZ", "pre-departure", "female", "30-59")
    assert cells[woman] == {"examined": 1, "hiv-reactive-screening": 1, "cxr-suggestive-tb": 1}
    assert sum(values["examined"] for values in cells.values()) == 2
    assert sum(values.get("hiv-reactive-screening", 0) for values in cells.values()) == 1


def test_amendments_and_withdrawals_move_the_counts(world: World) -> None:
    first = submit(
        world,
        number="2026-A-1",
        examined_on=AUGUST,
        outcomes={"syphilis-nontreponemal": "positive"},
        migrant=WOMAN,
        destination="KZ",
    )
    woman_kz = ("2026-08", "TJ", "KZ", "pre-departure", "female", "30-59")
    assert nonzero(stored_counts(world))[woman_kz] == {"examined": 1, "syphilis-reactive": 1}

    # the clinic corrects the result and the destination: the count leaves the old cell
    corrected = examination_bundle(
        number="2026-A-1", examined_on=AUGUST, migrant=WOMAN, destination="RU"
    )
    amend(world, first.examination.id, corrected)
    cells = nonzero(stored_counts(world))
    woman_ru = ("2026-08", "TJ", "RU", "pre-departure", "female", "30-59")
    assert cells[woman_ru] == {"examined": 1}
    assert cells.get(woman_kz, {}) == {}

    withdraw(world, first.examination.id)
    assert all(not values for values in nonzero(stored_counts(world)).values())


def test_a_refused_submission_counts_nothing(world: World) -> None:
    submit(world, number="2026-R-1", examined_on=AUGUST, destination="KZ")
    before = stored_counts(world)
    bundle = examination_bundle(number="2026-R-2", examined_on=AUGUST, destination="KZ")
    bundle["entry"][1]["resource"]["gender"] = "banana"
    with pytest.raises(InvalidResource):
        submit(world, bundle)
    assert stored_counts(world) == before


def test_rebuild_from_the_stored_examinations_agrees_with_the_kept_counts(world: World) -> None:
    outcomes = [
        {"hiv-screening": "positive"},
        {"chest-xray": "abnormal-tb", "syphilis-nontreponemal": "positive"},
        {},
        {"hiv-screening": "positive", "syphilis-nontreponemal": "positive"},
    ]
    submissions = [
        submit(
            world,
            number=f"2026-B-{n}",
            examined_on=date(2026, 7 + n % 3, 3 + n),
            outcomes=found,
            passport=f"50000000{n}",
            destination=("KZ", "RU")[n % 2],
        )
        for n, found in enumerate(outcomes)
    ]
    amend(
        world,
        submissions[0].examination.id,
        examination_bundle(
            number="2026-B-0", examined_on=date(2026, 7, 3), passport="500000000", destination="RU"
        ),
    )
    withdraw(world, submissions[2].examination.id)
    kept = nonzero(stored_counts(world))
    assert sum(v["examined"] for v in kept.values() if "examined" in v) == 3

    with world.ctx.db.unit_of_work() as uow:
        result = rebuild(uow)
        uow.commit()
    assert result.examinations == 3
    assert nonzero(stored_counts(world)) == kept
    with world.ctx.db.read_session() as session:
        tallies = session.scalars(select(SurveillanceTally)).all()
    assert len(tallies) == 3  # one per current version; withdrawn and amended ones are gone


@pytest.mark.committed
def test_the_rebuild_command_reports_what_it_counted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(world, number="2026-C-1", examined_on=AUGUST, destination="KZ")
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(world.ctx.settings.keys_dir))
    monkeypatch.setenv("REGISTRY_DATABASE_URL", world.ctx.settings.database_url)
    before = stored_counts(world)

    result = CliRunner().invoke(main, ["surveillance", "rebuild"])

    assert result.exit_code == 0, result.output
    assert "surveillance counts rebuilt: 1 examinations in 1 microcells" in result.output
    assert stored_counts(world) == before

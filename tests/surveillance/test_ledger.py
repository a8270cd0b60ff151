"""The release ledger: two data versions of a year, released one after the other, attacked together.

Version 1 is released; a few late records arrive for its closed months (and, in the second case,
another quarter closes). The attacker holds every count published from both versions, and knows
that version 2 is version 1 plus the late records, each a record of non-negative counts that
obeys the relations between measures. No withheld count of either version, and no small count
of the late records, may be narrowed below what the rule guarantees (docs/surveillance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from registry.surveillance.cube import Cube, Microcell, Period, build_cube
from registry.surveillance.disclosure import ProtectedCube, protect, sensitivity
from registry.surveillance.ledger import added_since, combine, protect_layer
from registry.surveillance.witness import PUBLISHED
from tests.surveillance.attacker import LayeredAttacker
from tests.surveillance.synthetic import findings, population

K = 5
KNOWN_EMPTY: tuple[dict[str, str], ...] = ()  # no destination "none" in this world
NOBODY = dict.fromkeys(findings(__import__("random").Random(0), 0), 0)


def _record(month: str, *codes: str, **found: int) -> Microcell:
    return (month, *codes), {**NOBODY, "examined": 1, **found}


# the late records: what the attacker would like to learn about them
LATE = [
    _record(
        "2026-02",
        "TJ",
        "RU",
        "in-host",
        "female",
        "60+",
        **{"hiv-reactive-screening": 1, "referrals-made": 1},
    ),
    _record(
        "2026-01",
        "KG",
        "KZ",
        "return",
        "male",
        "18-29",
        **{"cxr-suggestive-tb": 1, "tb-bact-confirmed": 1, "referrals-made": 1},
    ),
    _record("2026-03", "TJ", "KZ", "pre-departure", "male", "30-59"),
]


def _plus(cells: Sequence[Microcell], extra: Sequence[Microcell]) -> list[Microcell]:
    out = {tuple(key): dict(values) for key, values in cells}
    for key, values in extra:
        row = out.setdefault(tuple(key), dict(NOBODY))
        for measure, count in values.items():
            row[measure] += count
    return sorted(out.items())


# a small world keeps the attacker's programs small: two of each country, fewer categories
CATEGORIES = {
    "origin": ("KG", "TJ"),
    "destination": ("KZ", "RU"),
    "purpose": ("pre-departure", "return", "in-host"),
    "sex": ("male", "female"),
    "age_band": ("18-29", "30-59", "60+"),
}


def _cube(cells: Sequence[Microcell], closed: int) -> Cube:
    return build_cube(
        cells, year=2026, closed_months=closed, categories=CATEGORIES, known_empty=KNOWN_EMPTY
    )


def _published(protected: ProtectedCube) -> dict[tuple[str, int], float]:
    cube = protected.cube
    return {
        (m, i): cube.values[m][i]
        for m in cube.measures
        for i in range(cube.size)
        if protected.status[m][i] == PUBLISHED
    }


def _sensitive(cube: Cube) -> list[tuple[str, int, tuple[int, int]]]:
    out = []
    for m in cube.measures:
        for i in range(cube.size):
            need = cube.publishable(i) and sensitivity(cube, m, i, K)
            if need:
                out.append((m, i, need))
    return out


def _narrowed(attacker: LayeredAttacker, cube: Cube, names: Sequence[str]) -> list[str]:
    """Every sensitive cell of `cube` whose interval misses 0 / v+1 (or v-1 for a whole group)."""
    found = []
    for m, i, (down, up) in _sensitive(cube):
        value = cube.values[m][i]
        low, high = attacker.interval(cube, m, i, names)
        if low > value - down + 1e-6 or high < value + up - 1e-6:
            found.append(f"{m} {cube.key(i)} = {value}: [{low:g}, {high:g}]")
    return found


def _world(closed_after: int) -> tuple[list[Microcell], list[Microcell]]:
    cells = population(
        5,
        months=6,
        per_month=700,
        origins=CATEGORIES["origin"],
        destinations=CATEGORIES["destination"],
        purposes=CATEGORIES["purpose"],
        sexes=CATEGORIES["sex"],
        ages=CATEGORIES["age_band"],
    )
    first = [(key, values) for key, values in cells if int(key[0][5:]) <= 3]
    later = [(key, values) for key, values in cells if 3 < int(key[0][5:]) <= closed_after]
    return first, _plus(first, [*LATE, *later])


@pytest.fixture(scope="module")
def base() -> ProtectedCube:
    """Version 1 released: its first quarter protected on its own (the same in every case)."""
    first, _second = _world(3)
    return protect(_cube(first, 3), k=K)


def test_without_the_ledger_two_versions_give_the_late_records_away(base: ProtectedCube) -> None:
    """The problem: each version protected on its own, the difference is the late records."""
    first, second = _world(3)
    assert base.cube.values == _cube(first, 3).values
    again = protect(_cube(second, 3), k=K)
    late, removed = added_since(second, [first])
    assert not removed
    late_cube = _cube(late, 3)
    attacker = LayeredAttacker(
        {"x1": base.cube, "late": late_cube},
        [(base.cube, _published(base), ["x1"]), (again.cube, _published(again), ["x1", "late"])],
        base.cube.relations,
    )
    leaked = _narrowed(attacker, late_cube, ["late"])
    # e.g. the quarter's total examined moved by exactly 3, hiv-reactive in women by exactly 1
    assert any(
        "hiv-reactive-screening ('2026-Q1', 'all', 'all', 'all', 'female'" in s for s in leaked
    ), leaked


@pytest.mark.parametrize("closed_after", [3, 6], ids=["late-records", "late-records-next-quarter"])
def test_ledger_releases_of_two_versions_narrow_nothing(
    closed_after: int, base: ProtectedCube
) -> None:
    first, second = _world(closed_after)
    assert base.cube.values == _cube(first, 3).values
    late, removed = added_since(second, [first])
    assert not removed
    current = _cube(second, closed_after)
    revision = protect_layer(late, current, k=K, known_empty=KNOWN_EMPTY)
    combined = combine(current, [base, revision])
    assert combined.cube.values == current.values  # the counts are the new version's
    relations = [r for r in base.cube.relations if r in revision.cube.relations]
    attacker = LayeredAttacker(
        {"x1": base.cube, "late": revision.cube},
        [
            (base.cube, _published(base), ["x1"]),
            (current, _published(combined), ["x1", "late"]),
            # stronger than any release: the attacker also holds the late records' own table
            (revision.cube, _published(revision), ["late"]),
        ],
        relations,
    )
    assert _narrowed(attacker, base.cube, ["x1"]) == []
    assert _narrowed(attacker, current, ["x1", "late"]) == []
    assert _narrowed(attacker, revision.cube, ["late"]) == []
    # what the new version still says: a count the late records left alone stays published,
    # and a new quarter's totals are published; a count that moved by fewer than k is withheld
    # a cell of the first quarter is published exactly when both its parts are; what the late
    # records did not touch keeps its count (only published zeros go, priced at 1 each)
    touched = untouched_lost = 0
    for m in current.measures:
        for i in range(current.size):
            key = current.key(i)
            if not current.publishable(i) or Period.parse(key[0]).months[-1] > 3:
                continue
            j = base.cube.index(key)
            both = base.status[m][j] == PUBLISHED and revision.status[m][i] == PUBLISHED
            assert (combined.status[m][i] == PUBLISHED) == both, (m, key)
            if base.status[m][j] == PUBLISHED and not both:
                if revision.cube.values[m][i]:
                    touched += 1
                else:
                    untouched_lost += current.values[m][i]
    assert touched > 0
    assert untouched_lost == 0
    q1 = current.index(["2026-Q1", "all", "all", "all", "all", "all"])
    was = base.cube.index(["2026-Q1", "all", "all", "all", "all", "all"])
    assert current.values["examined"][q1] == base.cube.values["examined"][was] + 3
    assert combined.status["examined"][q1] != PUBLISHED  # 3 late records: fewer than k
    if closed_after == 6:
        q2 = current.index(["2026-Q2", "all", "all", "all", "all", "all"])
        assert combined.status["examined"][q2] == PUBLISHED

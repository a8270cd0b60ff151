"""Disclosure control proved against the attacker's linear program, not just the threshold."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.surveillance.cube import (
    AGE_BANDS,
    MAX_CROSSED,
    MEASURES,
    PURPOSES,
    SEXES,
    Cube,
    Granularity,
    Microcell,
    build_cube,
)
from registry.surveillance.disclosure import (
    ProtectedCube,
    audit,
    primary_cells,
    protect,
    sensitivity,
)
from registry.surveillance.extract import ExtractRequest, ProtectedTable, extract
from tests.surveillance.attacker import Attacker

TOLERANCE = 1e-6
DEEP = {Granularity.MONTH: 3, Granularity.QUARTER: 3, Granularity.YEAR: 3}
PROFILES = ("sparse", "skewed", "single", "small", "mixed", "all-positive")

check = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def microcells(seed: int, profile: str, shape: tuple[int, int, int, int]) -> list[Microcell]:
    """Counts of examined, HIV reactive and HIV confirmed with a given shape and profile."""
    rng = random.Random(seed)
    months, origins, destinations, purposes = shape
    leaves = list(
        product(
            range(1, months + 1),
            ("TJ", "UZ", "KG")[:origins],
            ("RU", "none")[:destinations],
            PURPOSES[:purposes],
            SEXES[:2],
            AGE_BANDS[1:3],
        )
    )
    heavy = rng.randrange(len(leaves))
    cells = []
    for n, (month, *codes) in enumerate(leaves):
        examined = {
            "sparse": rng.choice((0, 0, 0, 0, 1, 2, 3)),
            "skewed": rng.randint(50, 200) if n == heavy else rng.choice((0, 0, 1, 2)),
            "single": rng.randint(1, 6) if n == heavy else 0,
            "small": rng.randint(1, 4),
            "mixed": rng.choice((0, 1, 2, 5, 8, 13, 30)),
            "all-positive": rng.randint(3, 9),
        }[profile]
        reactive = examined if profile == "all-positive" else rng.randint(0, min(examined, 3))
        confirmed = rng.randint(0, reactive)
        counts = {
            "examined": examined,
            "hiv-reactive-screening": reactive,
            "hiv-confirmed": confirmed,
        }
        cells.append(((f"2026-{month:02d}", *codes), counts))
    return cells


def everything_published(protected_cube: ProtectedCube) -> dict[tuple[str, int], float]:
    """Every published count of the canonical tables: what all possible extracts reveal."""
    cube = protected_cube.cube
    out = {}
    for measure in cube.measures:
        for index in range(cube.size):
            if cube.publishable(index):
                value = protected_cube.published_value(measure, index)
                if value is not None:
                    out[(measure, index)] = float(value)
    return out


def assert_every_primary_protected(
    cube: Cube, k: int, published: Mapping[tuple[str, int], float], protected_cube: ProtectedCube
) -> int:
    """Each primary count could be 0 (or v-1 for a group attribute) and could be v+1."""
    attacker = Attacker(cube, published)
    checked = 0
    for measure, index in primary_cells(protected_cube):
        assert (measure, index) not in published, f"{measure} {cube.key(index)} is published"
        need = sensitivity(cube, measure, index, k)
        assert need is not None
        down, up = need
        value = cube.values[measure][index]
        low, high = attacker.interval(measure, index)
        assert low <= value - down + TOLERANCE, (measure, cube.key(index), value, low, high)
        assert high >= value + up - TOLERANCE, (measure, cube.key(index), value, low, high)
        checked += 1
    return checked


@check
@given(
    seed=st.integers(0, 2**32 - 1),
    profile=st.sampled_from(PROFILES),
    shape=st.tuples(
        st.sampled_from((1, 3)), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2)
    ),
    k=st.sampled_from((3, 4, 5)),
    two_way_months=st.booleans(),
)
def test_every_suppressed_count_could_be_zero_and_could_be_one_more(
    seed: int, profile: str, shape: tuple[int, int, int, int], k: int, two_way_months: bool
) -> None:
    crossing = {**MAX_CROSSED, Granularity.MONTH: 2 if two_way_months else 1}
    cube = build_cube(
        microcells(seed, profile, shape), year=2026, closed_months=shape[0], max_crossed=crossing
    )
    protected_cube = protect(cube, k=k)
    assert audit(protected_cube) == []
    assert_every_primary_protected(cube, k, everything_published(protected_cube), protected_cube)


@check
@given(
    seed=st.integers(0, 2**32 - 1),
    profile=st.sampled_from(PROFILES),
    shape=st.tuples(st.just(1), st.integers(2, 3), st.integers(1, 2), st.integers(1, 2)),
)
def test_three_way_tables_are_protected_when_the_canonical_set_allows_them(
    seed: int, profile: str, shape: tuple[int, int, int, int]
) -> None:
    cube = build_cube(
        microcells(seed, profile, shape), year=2026, closed_months=1, max_crossed=DEEP
    )
    protected_cube = protect(cube, k=5)
    assert audit(protected_cube) == []
    assert_every_primary_protected(cube, 5, everything_published(protected_cube), protected_cube)


def test_a_realistic_quarter_with_every_measure_is_protected(
    pilot_quarter: Cube, pilot_protected: ProtectedCube
) -> None:
    cube, protected_cube = pilot_quarter, pilot_protected
    assert audit(protected_cube) == []
    checked = assert_every_primary_protected(
        cube, 5, everything_published(protected_cube), protected_cube
    )
    assert checked > 50  # the data is sparse enough to exercise the search


def published_by(tables: Iterable[ProtectedTable], cube: Cube) -> dict[tuple[str, int], float]:
    """The union of what several extracts publish, as canonical cells."""
    out: dict[tuple[str, int], float] = {}
    for table in tables:
        for cell in table.cells:
            if cell.value is None:
                continue
            codes = [cell.codes.get(d, "all") for d in ("origin", "destination", "purpose")]
            codes += [cell.codes.get(d, "all") for d in ("sex", "age_band")]
            index = cube.index([cell.period.label, *codes])
            out[(cell.measure, index)] = float(cell.value)
    return out


def test_releases_with_other_groupings_and_overlapping_periods_combined_still_protect(
    pilot_quarter: Cube, pilot_protected: ProtectedCube
) -> None:
    cube, protected_cube = pilot_quarter, pilot_protected
    years = {2026: protected_cube}
    requests = [
        ExtractRequest(Granularity.MONTH, "2026-01", "2026-03", grouping=("sex",)),
        ExtractRequest(Granularity.MONTH, "2026-02", "2026-03", grouping=("origin",)),
        ExtractRequest(Granularity.QUARTER, "2026-Q1", "2026-Q1", grouping=("sex", "age_band")),
        ExtractRequest(
            Granularity.QUARTER, "2026-Q1", "2026-Q1", grouping=("origin", "destination")
        ),
        ExtractRequest(
            Granularity.QUARTER,
            "2026-Q1",
            "2026-Q1",
            grouping=("age_band",),
            where={"origin": "TJ"},
        ),
    ]
    tables = [extract(years, request) for request in requests]
    published = published_by(tables, cube)
    assert len(published) > 100
    assert_every_primary_protected(cube, 5, published, protected_cube)


def test_releases_at_different_thresholds_nest_and_together_protect_the_lower_one(
    pilot_quarter: Cube, pilot_protected: ProtectedCube
) -> None:
    cube = pilot_quarter
    low, high = protect(cube, k=3), pilot_protected
    for measure in MEASURES:
        for index in range(cube.size):
            if high.status[measure][index] == 0:
                assert low.status[measure][index] == 0, "the k=5 release publishes less"
    published = everything_published(low) | everything_published(high)
    assert_every_primary_protected(cube, 3, published, low)


def test_suppressing_only_the_small_counts_is_undone_by_subtraction(pilot_quarter: Cube) -> None:
    cube = pilot_quarter
    naive = {
        (m, i): float(cube.values[m][i])
        for m in cube.measures
        for i in range(cube.size)
        if cube.publishable(i) and sensitivity(cube, m, i, 5) is None
    }
    attacker = Attacker(cube, naive)
    exposed = 0
    for measure in ("hiv-confirmed", "tb-bact-confirmed"):
        for index in range(cube.size):
            if cube.publishable(index) and sensitivity(cube, measure, index, 5):
                low, high = attacker.interval(measure, index)
                exposed += high - low < TOLERANCE
    assert exposed > 0, "the attacker's program must find counts that primary suppression leaks"


def test_protection_is_deterministic(
    pilot_protected: ProtectedCube, pilot_protected_again: ProtectedCube
) -> None:
    # two computations from two cubes built from the same data
    first, second = pilot_protected, pilot_protected_again
    assert first is not second
    assert first.status == second.status


@pytest.mark.parametrize("k", [2, 1, 0, -5])
def test_thresholds_below_three_are_refused(k: int) -> None:
    cube = build_cube(microcells(1, "small", (1, 1, 1, 1)), year=2026, closed_months=1)
    with pytest.raises(ValueError, match="at least 3"):
        protect(cube, k=k)


def test_the_primary_rule_marks_small_counts_and_whole_group_findings_only() -> None:
    cells = [
        (("2026-01", "TJ", "RU", "return", "male", "18-29"), {"examined": 6, "hiv-confirmed": 6}),
        (("2026-01", "TJ", "RU", "return", "female", "18-29"), {"examined": 2, "hiv-confirmed": 0}),
        (("2026-01", "TJ", "RU", "return", "male", "30-59"), {"examined": 9, "hiv-confirmed": 2}),
    ]
    cube = build_cube(cells, year=2026, closed_months=1, max_crossed=DEEP)

    def cell(*codes: str) -> int:
        return cube.index(["2026-01", "TJ", "RU", "return", *codes])

    assert sensitivity(cube, "hiv-confirmed", cell("male", "18-29"), 5) == (1, 0)
    assert sensitivity(cube, "examined", cell("female", "18-29"), 5) == (2, 1)
    assert sensitivity(cube, "hiv-confirmed", cell("female", "18-29"), 5) is None  # zero
    assert sensitivity(cube, "examined", cell("male", "30-59"), 5) is None
    assert sensitivity(cube, "hiv-confirmed", cell("male", "30-59"), 5) == (2, 1)


def test_cells_known_to_be_empty_are_never_counted_on() -> None:
    cells = [
        (key, counts)
        for key, counts in microcells(3, "mixed", (1, 2, 2, 2))
        if key[2] != "none" or key[3] != "return"
    ]
    empty = [{"destination": "none", "purpose": "return"}]
    cube = build_cube(cells, year=2026, closed_months=1, known_empty=empty, max_crossed=DEEP)
    assert cube.known_empty
    protected_cube = protect(cube, k=5)
    assert audit(protected_cube) == []
    assert_every_primary_protected(cube, 5, everything_published(protected_cube), protected_cube)

"""The canonical cube: period labels, validation, and totals that add up."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.surveillance.cube import (
    ALL,
    DIMENSIONS,
    Granularity,
    Period,
    build_cube,
)

MICROCELL_KEYS = st.tuples(
    st.integers(1, 3).map(lambda m: f"2026-{m:02d}"),
    st.sampled_from(("TJ", "KG")),
    st.sampled_from(("RU", "none")),
    st.sampled_from(("pre-departure", "return")),
    st.sampled_from(("male", "female")),
    st.sampled_from(("18-29", "60+")),
)


@pytest.mark.parametrize(
    ("label", "dhis2", "interval", "start", "end"),
    [
        ("2026-03", "202603", "2026-03-01/P1M", date(2026, 3, 1), date(2026, 3, 31)),
        ("2026-02", "202602", "2026-02-01/P1M", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-Q1", "2026Q1", "2026-01-01/P3M", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q4", "2026Q4", "2026-10-01/P3M", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026", "2026", "2026-01-01/P1Y", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_period_labels_map_to_dhis2_and_iso_intervals(
    label: str, dhis2: str, interval: str, start: date, end: date
) -> None:
    period = Period.parse(label)
    assert period.label == label
    assert period.dhis2 == dhis2
    assert period.iso_interval == interval
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize("label", ["2026-13", "2026-Q5", "26", "2026-1", "2026/03", ""])
def test_malformed_period_labels_are_refused(label: str) -> None:
    with pytest.raises(ValueError):
        Period.parse(label)


def test_period_ranges_span_years_in_order() -> None:
    months = Period.parse("2025-11").span(Granularity.MONTH, Period.parse("2026-02"))
    assert [p.label for p in months] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(ValueError):
        Period.parse("2026-02").span(Granularity.MONTH, Period.parse("2026-01"))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.lists(st.tuples(MICROCELL_KEYS, st.integers(0, 40)), min_size=1, max_size=40))
def test_every_total_is_the_sum_of_its_microcells(rows: list[tuple[tuple[str, ...], int]]) -> None:
    cube = build_cube(
        [(key, {"examined": n}) for key, n in rows],
        year=2026,
        closed_months=3,
        categories={"purpose": ("pre-departure", "return"), "sex": ("male", "female")},
    )
    expected: dict[tuple[str, ...], int] = {}
    for key, n in rows:
        expected[key] = expected.get(key, 0) + n
    for index in range(cube.size):
        codes = cube.key(index)
        period = Period.parse(codes[0])
        total = sum(
            n
            for key, n in expected.items()
            if Period.parse(key[0]).index in period.months
            and all(c in (ALL, k) for c, k in zip(codes[1:], key[1:], strict=True))
        )
        assert cube.values["examined"][index] == total, codes


def test_quarters_and_the_year_exist_only_once_closed() -> None:
    cells = [(("2026-01", "TJ", "RU", "return", "male", "18-29"), {"examined": 3})]
    assert [p for p in build_cube(cells, year=2026, closed_months=2).axes[0].codes] == [
        "2026-01",
        "2026-02",
    ]
    codes = build_cube(cells, year=2026, closed_months=12).axes[0].codes
    assert "2026-Q4" in codes and "2026" in codes


def test_months_after_the_closed_month_are_left_out() -> None:
    cells = [
        (("2026-01", "TJ", "RU", "return", "male", "18-29"), {"examined": 3}),
        (("2026-02", "TJ", "RU", "return", "male", "18-29"), {"examined": 9}),
    ]
    cube = build_cube(cells, year=2026, closed_months=1)
    assert cube.value("examined", ["2026-01", ALL, ALL, ALL, ALL, ALL]) == 3
    assert cube.closed_months == 1


@pytest.mark.parametrize(
    ("key", "counts", "message"),
    [
        (("2026-Q1", "TJ", "RU", "return", "male", "18-29"), {"examined": 1}, "monthly"),
        (("2025-12", "TJ", "RU", "return", "male", "18-29"), {"examined": 1}, "outside"),
        (("2026-01", "Tj", "RU", "return", "male", "18-29"), {"examined": 1}, "origin"),
        (("2026-01", "TJ", "XXX", "return", "male", "18-29"), {"examined": 1}, "destination"),
        (("2026-01", "TJ", "RU", "visit", "male", "18-29"), {"examined": 1}, "purpose"),
        (("2026-01", "TJ", "RU", "return", "m", "18-29"), {"examined": 1}, "sex"),
        (("2026-01", "TJ", "RU", "return", "male", "20-29"), {"examined": 1}, "age_band"),
        (("2026-01", "TJ", "RU", "return", "male", "18-29"), {"examined": -1}, "non-negative"),
        (("2026-01", "TJ", "RU", "return", "male", "18-29"), {"examined": 1.5}, "non-negative"),
        (("2026-01", "TJ", "RU", "return", "male", "18-29"), {"deaths": 1}, "unknown measure"),
    ],
)
def test_invalid_microcells_are_refused(
    key: tuple[str, ...], counts: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_cube([(key, counts)], year=2026)  # type: ignore[list-item]


def test_relations_the_data_contradicts_are_not_assumed() -> None:
    key = ("2026-01", "TJ", "RU", "return", "male", "18-29")
    consistent = build_cube([(key, {"examined": 5, "hiv-confirmed": 1})], year=2026)
    assert ("hiv-confirmed", "hiv-reactive-screening") not in consistent.relations
    assert ("hiv-reactive-screening", "examined") in consistent.relations
    both = build_cube(
        [(key, {"examined": 5, "hiv-reactive-screening": 2, "hiv-confirmed": 1})], year=2026
    )
    assert ("hiv-confirmed", "hiv-reactive-screening") in both.relations


def test_counts_in_cells_declared_impossible_are_refused() -> None:
    key = ("2026-01", "TJ", "none", "pre-departure", "male", "18-29")
    with pytest.raises(ValueError, match="impossible"):
        build_cube(
            [(key, {"examined": 2})],
            year=2026,
            known_empty=[{"destination": "none", "purpose": "pre-departure"}],
        )


def test_cell_keys_follow_the_dimension_order() -> None:
    key = ("2026-01", "TJ", "RU", "return", "male", "18-29")
    cube = build_cube([(key, {"examined": 2})], year=2026, closed_months=1)
    index = cube.index(list(key))
    assert cube.key(index) == key
    assert len(DIMENSIONS) == len(key)
    assert cube.is_leaf(index)
    assert not cube.is_leaf(cube.index(["2026-01", ALL, "RU", "return", "male", "18-29"]))


def test_measures_have_one_code_and_the_former_spelling_is_read_and_named() -> None:
    from registry.surveillance.cube import (
        MEASURES,
        deprecation_warnings,
        measure_column,
        read_measures,
    )

    # a FHIR id allows letters, digits, "-" and "." only: the one code is a valid Measure id
    assert all(re.fullmatch(r"[a-z][a-z\-]{0,63}", m) for m in MEASURES)
    assert read_measures("examined, hiv-confirmed") == (("examined", "hiv-confirmed"), ())
    assert read_measures("hiv_confirmed,examined") == (
        ("hiv-confirmed", "examined"),
        ("hiv_confirmed",),
    )
    assert deprecation_warnings(["tb_rif_resistant"]) == [
        "measure code tb_rif_resistant is deprecated; use tb-rif-resistant"
    ]
    assert measure_column("tb-rif-resistant") == "tb_rif_resistant"
    with pytest.raises(ValueError, match="unknown measure 'HIV-confirmed'"):
        read_measures("HIV-confirmed")
    with pytest.raises(ValueError, match="repeated"):
        read_measures("hiv_confirmed,hiv-confirmed")
    with pytest.raises(ValueError, match="at least one"):
        read_measures(" , ")


def test_a_tally_sealed_with_the_former_measure_spelling_is_read() -> None:
    import json

    from registry.surveillance.tally import Tally

    key = ["2026-03", "TJ", "KZ", "pre-departure", "female", "30-59"]
    former = {"key": key, "counts": {"examined": 1, "hiv_reactive_screening": 1}}
    tally = Tally.from_bytes(json.dumps(former).encode())
    assert tally.counts["hiv-reactive-screening"] == 1
    assert tally.counts["examined"] == 1
    assert Tally.from_bytes(tally.to_bytes()) == tally

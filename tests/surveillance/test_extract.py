"""Extracts project the protected canonical cube; they never re-suppress."""

from __future__ import annotations

import pytest

from registry.surveillance.cube import ALL, Cube, Granularity
from registry.surveillance.disclosure import Flag, ProtectedCube
from registry.surveillance.extract import ExtractRequest, extract, protect_years, release
from tests.surveillance.synthetic import population


def by_origin_and_destination() -> ExtractRequest:
    return ExtractRequest(
        Granularity.QUARTER, "2026-Q1", "2026-Q1", grouping=("origin", "destination")
    )


def test_an_extract_holds_its_cells_and_every_margin(
    quarter: Cube, protected_quarter: ProtectedCube
) -> None:
    table = extract({2026: protected_quarter}, by_origin_and_destination())
    per_measure = len(table.cells) // len(table.measures)
    assert per_measure == (2 + 1) * (2 + 1)  # two origins, two destinations, and their totals
    assert table.dimensions == ("period", "origin", "destination")
    for cell in table.cells:
        index = quarter.index(
            [cell.period.label, cell.codes["origin"], cell.codes["destination"], ALL, ALL, ALL]
        )
        assert cell.flag is protected_quarter.flag(cell.measure, index)
        true_value = quarter.values[cell.measure][index]
        assert cell.value == (None if cell.suppressed else true_value)


def test_totals_of_common_measures_survive(protected_quarter: ProtectedCube) -> None:
    table = extract({2026: protected_quarter}, by_origin_and_destination())
    grand = {
        c.measure: c.value
        for c in table.cells
        if c.codes["origin"] == ALL and c.codes["destination"] == ALL
    }
    assert grand["examined"] and grand["examined"] > 5_000
    assert grand["hiv-reactive-screening"] is not None


def test_rounding_applies_after_suppression(protected_quarter: ProtectedCube) -> None:
    exact = extract({2026: protected_quarter}, by_origin_and_destination())
    rounded_request = ExtractRequest(
        Granularity.QUARTER,
        "2026-Q1",
        "2026-Q1",
        grouping=("origin", "destination"),
        rounding=5,
    )
    rounded = extract({2026: protected_quarter}, rounded_request)
    for plain, coarse in zip(exact.cells, rounded.cells, strict=True):
        assert plain.suppressed == coarse.suppressed
        if plain.value is not None:
            assert coarse.value is not None and coarse.value % 5 == 0
            assert abs(coarse.value - plain.value) <= 2
    assert rounded.method["rounding"] == 5


def test_monthly_extracts_are_one_way_tables_at_most(protected_quarter: ProtectedCube) -> None:
    monthly = ExtractRequest(Granularity.MONTH, "2026-01", "2026-03", grouping=("sex", "age_band"))
    with pytest.raises(ValueError, match="at most 1"):
        extract({2026: protected_quarter}, monthly)
    scoped = ExtractRequest(
        Granularity.QUARTER,
        "2026-Q1",
        "2026-Q1",
        grouping=("sex", "age_band"),
        where={"origin": "TJ"},
    )
    with pytest.raises(ValueError, match="scope counts"):
        extract({2026: protected_quarter}, scoped)


def test_a_scoped_extract_fixes_the_ministry_country(protected_quarter: ProtectedCube) -> None:
    request = ExtractRequest(
        Granularity.MONTH, "2026-01", "2026-02", grouping=(), where={"origin": "KG"}
    )
    table = extract({2026: protected_quarter}, request)
    assert table.dimensions == ("period", "origin")
    assert {c.codes["origin"] for c in table.cells} == {"KG"}
    assert len(table.cells) == 2 * len(table.measures)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grouping": ("colour",)}, "dimension"),
        ({"grouping": ("sex", "sex")}, "repeats"),
        ({"grouping": ("sex",), "where": {"sex": "male"}}, "either"),
        ({"measures": ("deaths",)}, "measures"),
        ({"k": 2}, "at least 3"),
        ({"rounding": 1}, "rounding"),
        ({"first": "2026-01"}, "not a quarter"),
    ],
)
def test_malformed_requests_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "granularity": Granularity.QUARTER,
        "first": "2026-Q1",
        "last": "2026-Q1",
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ExtractRequest(**fields)  # type: ignore[arg-type]


def test_periods_not_closed_or_at_another_k_are_refused(
    protected_quarter: ProtectedCube,
) -> None:
    with pytest.raises(ValueError, match="not closed"):
        extract(
            {2026: protected_quarter},
            ExtractRequest(Granularity.MONTH, "2026-03", "2026-04"),
        )
    with pytest.raises(ValueError, match="k=5"):
        extract(
            {2026: protected_quarter},
            ExtractRequest(Granularity.QUARTER, "2026-Q1", "2026-Q1", k=7),
        )
    with pytest.raises(ValueError, match="2025"):
        extract({2026: protected_quarter}, ExtractRequest(Granularity.YEAR, "2025", "2025"))


def test_release_equals_protecting_the_years_then_extracting() -> None:
    cells = population(5, months=4, per_month=2_000, origins=("TJ",), destinations=("RU",))
    request = ExtractRequest(Granularity.MONTH, "2026-02", "2026-03", grouping=("sex",))
    direct = release(cells, request, closed_through="2026-03")
    years = protect_years(cells, closed_through="2026-03")
    assert years[2026].cube.closed_months == 3
    assert extract(years, request).cells == direct.cells


def test_flags_never_say_why_a_count_is_withheld(protected_quarter: ProtectedCube) -> None:
    table = extract({2026: protected_quarter}, by_origin_and_destination())
    reasons = {c.flag for c in table.cells}
    assert reasons <= set(Flag)
    assert {c.suppressed for c in table.cells} == {True, False}

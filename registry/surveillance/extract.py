"""Extracts: what one request publishes, projected from the protected canonical cubes.

An extract never decides suppression. It reads cells of the year's `ProtectedCube` (whose
pattern depends on the data and k only), so any set of extracts of the same data, whatever
their groupings, periods or scopes, publishes a subset of one protected table set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, product

from registry.surveillance.cube import (
    ALL,
    DIMENSIONS,
    FLAT_DIMENSIONS,
    MEASURES,
    Granularity,
    Microcell,
    Period,
    build_cube,
)
from registry.surveillance.disclosure import (
    DEFAULT_K,
    Flag,
    ProtectedCube,
    check_k,
    method_statement,
    protect,
)


@dataclass(frozen=True)
class ExtractRequest:
    """What a ministry asks for; `where` fixes dimensions to its own country (its scope)."""

    granularity: Granularity
    first: str
    last: str
    grouping: tuple[str, ...] = ()
    measures: tuple[str, ...] = MEASURES
    k: int = DEFAULT_K
    rounding: int | None = None
    where: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "granularity", Granularity(self.granularity))
        check_k(self.k)
        if self.rounding is not None and (
            isinstance(self.rounding, bool)
            or not isinstance(self.rounding, int)
            or self.rounding < 2
        ):
            raise ValueError("rounding is a base of at least 2, or None")
        unknown = [d for d in (*self.grouping, *self.where) if d not in FLAT_DIMENSIONS]
        if unknown:
            raise ValueError(f"not a dimension to group by: {unknown}")
        if len(set(self.grouping)) != len(self.grouping):
            raise ValueError("grouping repeats a dimension")
        if set(self.grouping) & set(self.where):
            raise ValueError("a dimension is either grouped or fixed by the scope, not both")
        if not self.measures or any(m not in MEASURES for m in self.measures):
            raise ValueError(f"measures are among {list(MEASURES)}")
        for bound in (self.first, self.last):
            if Period.parse(bound).granularity is not self.granularity:
                raise ValueError(f"{bound} is not a {self.granularity} period")

    @property
    def periods(self) -> list[Period]:
        """The periods of the request, in order."""
        return Period.parse(self.first).span(self.granularity, Period.parse(self.last))

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Columns: the period, then the grouped and fixed dimensions in canonical order."""
        chosen = set(self.grouping) | set(self.where)
        return ("period", *(d for d in FLAT_DIMENSIONS if d in chosen))


@dataclass(frozen=True)
class ProtectedCell:
    """One published or suppressed count; `codes` gives each flat dimension of the extract."""

    period: Period
    codes: Mapping[str, str]
    measure: str
    value: int | None
    flag: Flag

    @property
    def suppressed(self) -> bool:
        """Whether the count is withheld (the only distinction a release may show)."""
        return self.flag is not Flag.PUBLISHED


@dataclass(frozen=True)
class ProtectedTable:
    """The cells of one extract, with the method statement the release carries."""

    request: ExtractRequest
    cells: tuple[ProtectedCell, ...]
    method: Mapping[str, object]

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Columns of the extract: the period, then the grouped and fixed dimensions."""
        return self.request.dimensions

    @property
    def measures(self) -> tuple[str, ...]:
        """Measures of the extract, in the requested order."""
        return self.request.measures


def protect_years(
    microcells: Iterable[Microcell],
    *,
    k: int = DEFAULT_K,
    closed_through: str | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    known_empty: Iterable[Mapping[str, str]] = (),
) -> dict[int, ProtectedCube]:
    """Build and protect the canonical cube of every year the microcells cover.

    Give whole years of microcells: a year's suppression depends on all of its closed months.
    `closed_through` (a month label) is the last month whose counts are final; later months,
    and quarters and years they would complete, are not published.
    """
    by_year: dict[int, list[Microcell]] = {}
    for key, counts in microcells:
        by_year.setdefault(Period.parse(key[0]).year, []).append((key, counts))
    last = Period.parse(closed_through) if closed_through is not None else None
    if last is not None and last.granularity is not Granularity.MONTH:
        raise ValueError("closed_through is a month label, such as 2026-03")
    empty = list(known_empty)
    protected: dict[int, ProtectedCube] = {}
    for year in sorted(by_year):
        if last is not None and year > last.year:
            continue
        closed = 12 if last is None or year < last.year else last.index
        cube = build_cube(
            by_year[year],
            year=year,
            closed_months=closed,
            categories=categories,
            known_empty=empty,
        )
        protected[year] = protect(cube, k=k)
    return protected


def extract(protected: Mapping[int, ProtectedCube], request: ExtractRequest) -> ProtectedTable:
    """Project a request from the protected cubes; refuse tables finer than the canonical set."""
    cells: list[ProtectedCell] = []
    for period in request.periods:
        year = protected.get(period.year)
        if year is None:
            raise ValueError(f"no protected counts for {period.year}")
        if year.k != request.k:
            raise ValueError(f"{period.year} is protected at k={year.k}, not k={request.k}")
        cube = year.cube
        if period.label not in cube.axes[0].codes:
            raise ValueError(f"{period.label} is not closed yet")
        crossed = len(request.grouping) + len(request.where)
        limit = cube.max_crossed.get(period.granularity, 0)
        if crossed > limit:
            raise ValueError(
                f"{period.granularity} tables cross at most {limit} dimension(s) "
                f"(the scope counts as one); this request crosses {crossed}"
            )
        axes = {d: cube.axes[DIMENSIONS.index(d)] for d in FLAT_DIMENSIONS}
        for dimension, code in request.where.items():
            axes[dimension].position(code)  # refuse a scope the cube does not know
        for size in range(len(request.grouping) + 1):
            for grouped in combinations(request.grouping, size):
                choices = [axes[d].codes[: axes[d].leaf_count] for d in grouped]
                for categories in product(*choices):
                    codes = dict(zip(grouped, categories, strict=True))
                    codes.update(request.where)
                    key = [period.label, *(codes.get(d, ALL) for d in FLAT_DIMENSIONS)]
                    index = cube.index(key)
                    shown = {d: codes.get(d, ALL) for d in request.dimensions[1:]}
                    for measure in request.measures:
                        value = year.published_value(measure, index)
                        cells.append(
                            ProtectedCell(
                                period=period,
                                codes=shown,
                                measure=measure,
                                value=_rounded(value, request.rounding),
                                flag=year.flag(measure, index),
                            )
                        )
    return ProtectedTable(
        request=request,
        cells=tuple(cells),
        method=method_statement(request.k, request.rounding),
    )


def release(
    microcells: Iterable[Microcell],
    request: ExtractRequest,
    *,
    closed_through: str | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    known_empty: Iterable[Mapping[str, str]] = (),
) -> ProtectedTable:
    """Protect whole years of microcells and extract one request from them."""
    years = {p.year for p in request.periods}
    relevant = [cell for cell in microcells if Period.parse(cell[0][0]).year in years]
    protected = protect_years(
        relevant,
        k=request.k,
        closed_through=closed_through,
        categories=categories,
        known_empty=known_empty,
    )
    return extract(protected, request)


def _rounded(value: int | None, base: int | None) -> int | None:
    """Round half up to a multiple of base; applied after suppression, so zeros stay zero."""
    if value is None or base is None:
        return value
    return base * ((2 * value + base) // (2 * base))

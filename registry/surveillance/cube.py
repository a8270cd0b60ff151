"""The canonical surveillance cube: one calendar year, every dimension with its totals.

Counts arrive as microcells (month x origin x destination x purpose x sex x age band, already
aggregated from the database). A ``Cube`` holds the counts of every cell for one calendar year:
the closed months, the complete quarters and the complete year, crossed with every category and
the ``all`` total of each other dimension. The cells a release may ever publish (`publishable`)
are those crossing at most `MAX_CROSSED` dimensions for their period length. Disclosure control
works on this fixed set, so every extract is a projection of one protected object and releases
cannot be played against each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import product

DIMENSIONS = ("period", "origin", "destination", "purpose", "sex", "age_band")
FLAT_DIMENSIONS = DIMENSIONS[1:]
PURPOSES = ("pre-departure", "return", "in-host", "periodic")
SEXES = ("male", "female", "other", "unknown")
AGE_BANDS = ("<18", "18-29", "30-59", "60+")
NO_DESTINATION = "none"
ALL = "all"

# One code per measure, the same everywhere: extract parameter, CSV and JSON, FHIR Measure id,
# DHIS2 and ADX data elements. Lower case with hyphens, because a FHIR id allows no underscore.
MEASURES = (
    "examined",
    "cxr-suggestive-tb",
    "tb-bact-confirmed",
    "tb-rif-resistant",
    "hiv-reactive-screening",
    "hiv-confirmed",
    "syphilis-reactive",
    "referrals-made",
    "referrals-completed",
)
# The spelling before measure codes were unified (1.x extracts): accepted on input, with a
# deprecation note in the answer; never written. The counts table keeps it as column names.
LEGACY_MEASURE_CODES = {m.replace("-", "_"): m for m in MEASURES if "-" in m}


def measure_column(measure: str) -> str:
    """The column of `surveillance_counts` that holds a measure (SQL names take no hyphen)."""
    return measure.replace("-", "_")


def measure_code(text: str) -> tuple[str, bool]:
    """A measure code as given, read: (the code, whether it was the deprecated spelling).

    Raise ValueError for anything that is neither a code nor an old spelling of one.
    """
    if text in MEASURES:
        return text, False
    if text in LEGACY_MEASURE_CODES:
        return LEGACY_MEASURE_CODES[text], True
    raise ValueError(f"unknown measure {text!r}; choose from {', '.join(MEASURES)}")


def read_measures(text: str | Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Read a comma list (or sequence) of measure codes: (the codes, the old spellings used).

    Raise ValueError on an unknown code, a repeated measure or an empty list.
    """
    items = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    items = [item for item in items if item]
    read = [measure_code(item) for item in items]
    codes = tuple(code for code, _ in read)
    if not codes:
        raise ValueError("name at least one measure")
    if len(set(codes)) != len(codes):
        raise ValueError("a measure is repeated")
    return codes, tuple(item for item, (_, old) in zip(items, read, strict=True) if old)


def deprecation_warnings(deprecated: Iterable[str]) -> list[str]:
    """What an answer says about each deprecated measure code a request used."""
    return [
        f"measure code {old} is deprecated; use {LEGACY_MEASURE_CODES[old]}" for old in deprecated
    ]


# Measures that say something about a person's health; the group-attribute rule applies to them.
CLINICAL_FINDINGS = (
    "cxr-suggestive-tb",
    "tb-bact-confirmed",
    "tb-rif-resistant",
    "hiv-reactive-screening",
    "hiv-confirmed",
    "syphilis-reactive",
)
# (lower, upper): every examination counted in `lower` is also counted in `upper`, so an attacker
# may assume lower <= upper in every cell. A pair the data contradicts is not used (an attacker
# who assumes it would be wrong).
MEASURE_RELATIONS = (
    ("cxr-suggestive-tb", "examined"),
    ("tb-bact-confirmed", "examined"),
    ("tb-rif-resistant", "tb-bact-confirmed"),
    ("hiv-reactive-screening", "examined"),
    ("hiv-confirmed", "hiv-reactive-screening"),
    ("syphilis-reactive", "examined"),
    ("referrals-completed", "referrals-made"),
)

CellKey = tuple[str, str, str, str, str, str]
Microcell = tuple[Sequence[str], Mapping[str, int]]

_ISO_ALPHA2 = re.compile(r"^[A-Z]{2}$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


class Granularity(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# How many of the five dimensions the finest published table crosses, by period length. Finer
# cross-classifications are never released: their cells are mostly small, and protecting them
# takes the coarser tables with them (measured: see docs/surveillance.md). Months give totals and
# one-way tables; quarters and years also two-way tables (corridor, sex by age, ...).
MAX_CROSSED: Mapping[Granularity, int] = {
    Granularity.MONTH: 1,
    Granularity.QUARTER: 2,
    Granularity.YEAR: 2,
}


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, quarter or year, as labelled in extracts (`2026-03`, `2026-Q1`, `2026`)."""

    year: int
    granularity: Granularity
    index: int  # month 1-12, quarter 1-4, or 1 for the year

    @classmethod
    def parse(cls, label: str) -> Period:
        """Read a period label; raise ValueError for anything else."""
        if m := _MONTH.match(label):
            return cls(int(m[1]), Granularity.MONTH, int(m[2]))
        if m := _QUARTER.match(label):
            return cls(int(m[1]), Granularity.QUARTER, int(m[2]))
        if m := _YEAR.match(label):
            return cls(int(m[1]), Granularity.YEAR, 1)
        raise ValueError(f"not a period label (2026-03, 2026-Q1 or 2026): {label!r}")

    @property
    def label(self) -> str:
        """The label used in every extract."""
        if self.granularity is Granularity.MONTH:
            return f"{self.year:04d}-{self.index:02d}"
        if self.granularity is Granularity.QUARTER:
            return f"{self.year:04d}-Q{self.index}"
        return f"{self.year:04d}"

    @property
    def months(self) -> range:
        """The month numbers (1-12) the period covers."""
        if self.granularity is Granularity.MONTH:
            return range(self.index, self.index + 1)
        if self.granularity is Granularity.QUARTER:
            return range(3 * self.index - 2, 3 * self.index + 1)
        return range(1, 13)

    @property
    def start(self) -> date:
        """First day of the period."""
        return date(self.year, self.months[0], 1)

    @property
    def end(self) -> date:
        """Last day of the period."""
        last = self.months[-1]
        following = date(self.year + 1, 1, 1) if last == 12 else date(self.year, last + 1, 1)
        return date.fromordinal(following.toordinal() - 1)

    @property
    def dhis2(self) -> str:
        """DHIS2 period identifier: 202603, 2026Q1, 2026."""
        if self.granularity is Granularity.MONTH:
            return f"{self.year:04d}{self.index:02d}"
        if self.granularity is Granularity.QUARTER:
            return f"{self.year:04d}Q{self.index}"
        return f"{self.year:04d}"

    @property
    def iso_interval(self) -> str:
        """ISO 8601 start/duration, as ADX wants it: 2026-03-01/P1M, 2026-01-01/P3M, ..."""
        duration = {"month": "P1M", "quarter": "P3M", "year": "P1Y"}[self.granularity]
        return f"{self.start.isoformat()}/{duration}"

    def span(self, granularity: Granularity, last: Period) -> list[Period]:
        """Every period of `granularity` from this one through `last`, in order."""
        if self.granularity is not granularity or last.granularity is not granularity:
            raise ValueError("period range bounds must have the requested granularity")
        per_year = {"month": 12, "quarter": 4, "year": 1}[granularity]
        first = self.year * per_year + self.index - 1
        final = last.year * per_year + last.index - 1
        if final < first:
            raise ValueError("period range ends before it starts")
        return [
            Period(n // per_year, granularity, n % per_year + 1) for n in range(first, final + 1)
        ]


class Axis:
    """One dimension of a cube: its codes (leaves first), and which code each one adds up into."""

    __slots__ = ("children", "codes", "leaf_count", "leaves_under", "lineage", "name", "parents")

    def __init__(
        self, name: str, codes: Sequence[str], parents: Sequence[int], leaf_count: int
    ) -> None:
        self.name = name
        self.codes = tuple(codes)
        self.parents = tuple(parents)  # -1: nothing published above this code
        self.leaf_count = leaf_count
        self.children: tuple[tuple[int, ...], ...] = tuple(
            tuple(c for c, p in enumerate(self.parents) if p == i) for i in range(len(self.codes))
        )
        lineage = []
        for i in range(len(self.codes)):
            chain = [i]
            while self.parents[chain[-1]] >= 0:
                chain.append(self.parents[chain[-1]])
            lineage.append(tuple(chain))
        # lineage[i]: the code itself, then every code it is added into, innermost first
        self.lineage: tuple[tuple[int, ...], ...] = tuple(lineage)
        self.leaves_under: tuple[tuple[int, ...], ...] = tuple(
            tuple(leaf for leaf in range(leaf_count) if i in self.lineage[leaf])
            for i in range(len(self.codes))
        )

    def __len__(self) -> int:
        return len(self.codes)

    def position(self, code: str) -> int:
        """Index of a code on this axis; ValueError for unknown codes."""
        try:
            return self.codes.index(code)
        except ValueError:
            raise ValueError(f"{self.name} has no category {code!r}") from None

    @classmethod
    def categorical(cls, name: str, categories: Sequence[str]) -> Axis:
        """A flat dimension: its categories, then `all`."""
        n = len(categories)
        return cls(name, [*categories, ALL], [n] * n + [-1], n)

    @classmethod
    def calendar(cls, year: int, closed_months: int) -> Axis:
        """Months 1..closed_months, the quarters they complete, and the year if it is complete."""
        quarters = closed_months // 3
        codes = [Period(year, Granularity.MONTH, m).label for m in range(1, closed_months + 1)]
        codes += [Period(year, Granularity.QUARTER, q).label for q in range(1, quarters + 1)]
        complete = closed_months == 12
        if complete:
            codes.append(Period(year, Granularity.YEAR, 1).label)
        year_pos = len(codes) - 1 if complete else -1
        parents = [
            closed_months + (m - 1) // 3 if (m - 1) // 3 < quarters else -1
            for m in range(1, closed_months + 1)
        ]
        parents += [year_pos] * quarters + ([-1] if complete else [])
        return cls("period", codes, parents, closed_months)


class Cube:
    """Every publishable count of one calendar year, for every measure, as dense arrays."""

    def __init__(
        self,
        *,
        year: int,
        axes: Sequence[Axis],
        values: Mapping[str, list[int]],
        relations: Sequence[tuple[str, str]],
        known_empty: frozenset[int],
        max_crossed: Mapping[Granularity, int] = MAX_CROSSED,
    ) -> None:
        self.year = year
        self.max_crossed = dict(max_crossed)
        self.axes = tuple(axes)
        strides = []
        size = 1
        for axis in reversed(self.axes):
            strides.append(size)
            size *= len(axis)
        self.strides = tuple(reversed(strides))
        self.size = size
        self.values = dict(values)
        self.relations = tuple(relations)
        self.known_empty = known_empty
        self.periods = tuple(Period.parse(code) for code in self.axes[0].codes)

    @property
    def measures(self) -> tuple[str, ...]:
        """Measure keys, in the canonical order."""
        return tuple(self.values)

    @property
    def closed_months(self) -> int:
        """How many months of the year the cube holds."""
        return self.axes[0].leaf_count

    def index(self, codes: Sequence[str]) -> int:
        """Position of the cell with these codes (one per dimension, `all` for a total)."""
        return sum(
            axis.position(code) * stride
            for axis, code, stride in zip(self.axes, codes, self.strides, strict=True)
        )

    def positions(self, index: int) -> tuple[int, ...]:
        """Code positions of a cell, one per dimension."""
        out = []
        for stride in self.strides:
            q, index = divmod(index, stride)
            out.append(q)
        return tuple(out)

    def key(self, index: int) -> CellKey:
        """Codes of a cell, one per dimension."""
        positions = self.positions(index)
        codes = tuple(axis.codes[p] for axis, p in zip(self.axes, positions, strict=True))
        return codes  # type: ignore[return-value]

    def crossed(self, index: int) -> int:
        """How many of the five flat dimensions the cell fixes to a category."""
        positions = self.positions(index)
        return sum(
            p < axis.leaf_count for p, axis in zip(positions[1:], self.axes[1:], strict=True)
        )

    def period(self, index: int) -> Period:
        """The period of a cell."""
        return self.periods[index // self.strides[0]]

    def publishable(self, index: int) -> bool:
        """Whether the cell belongs to the canonical table set (not too finely crossed)."""
        limit = self.max_crossed.get(self.period(index).granularity, 0)
        return self.crossed(index) <= limit

    def is_leaf(self, index: int) -> bool:
        """Whether a cell is a microcell (no total on any dimension)."""
        return all(
            p < axis.leaf_count for p, axis in zip(self.positions(index), self.axes, strict=True)
        )

    def leaves(self) -> Iterator[int]:
        """Indices of every microcell."""
        for positions in product(*(range(axis.leaf_count) for axis in self.axes)):
            yield sum(p * s for p, s in zip(positions, self.strides, strict=True))

    def value(self, measure: str, codes: Sequence[str]) -> int:
        """Count of one measure in one cell."""
        return self.values[measure][self.index(codes)]


def build_cube(
    microcells: Iterable[Microcell],
    *,
    year: int,
    closed_months: int = 12,
    categories: Mapping[str, Sequence[str]] | None = None,
    known_empty: Iterable[Mapping[str, str]] = (),
    max_crossed: Mapping[Granularity, int] = MAX_CROSSED,
) -> Cube:
    """Aggregate one year's microcells into the canonical cube; cost is linear in the cells.

    Pass every microcell of the year (not only the months a request asks for): the protection
    must not depend on the request. Months after `closed_months` are not yet publishable and are
    left out. `categories` fixes the categories of a dimension (by default: origins and
    destinations seen in the year, and every purpose, sex and age band). `max_crossed` is the
    canonical table set (how many dimensions a published table may cross, by period length); it
    is a property of the deployment, like k, not of a request. `known_empty` lists cell
    patterns that are impossible by construction (for example ``{"purpose": "pre-departure",
    "destination": "none"}``); disclosure control never relies on them holding a count, because
    an attacker knows they are empty.
    """
    if not 1 <= closed_months <= 12:
        raise ValueError("closed_months must be between 1 and 12")
    if not all(0 <= n <= len(FLAT_DIMENSIONS) for n in max_crossed.values()):
        raise ValueError(f"max_crossed values must be between 0 and {len(FLAT_DIMENSIONS)}")
    rows: dict[tuple[int, str, str, str, str, str], dict[str, int]] = {}
    for key, counts in microcells:
        if len(key) != len(DIMENSIONS):
            raise ValueError(f"a microcell key has {len(DIMENSIONS)} parts: {key!r}")
        period = Period.parse(key[0])
        if period.granularity is not Granularity.MONTH:
            raise ValueError(f"microcells are monthly, got {key[0]!r}")
        if period.year != year:
            raise ValueError(f"microcell {key!r} is outside {year}")
        if period.index > closed_months:
            continue
        origin, destination, purpose, sex, age_band = key[1:]
        _check_code("origin", origin, _ISO_ALPHA2.match(origin) is not None)
        _check_code(
            "destination",
            destination,
            destination == NO_DESTINATION or _ISO_ALPHA2.match(destination) is not None,
        )
        _check_code("purpose", purpose, purpose in PURPOSES)
        _check_code("sex", sex, sex in SEXES)
        _check_code("age_band", age_band, age_band in AGE_BANDS)
        row = rows.setdefault((period.index, origin, destination, purpose, sex, age_band), {})
        for measure, count in counts.items():
            if measure not in MEASURES:
                raise ValueError(f"unknown measure {measure!r}")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"counts are non-negative integers: {measure}={count!r}")
            row[measure] = row.get(measure, 0) + count

    declared = dict(categories or {})
    unknown = set(declared) - set(FLAT_DIMENSIONS)
    if unknown:
        raise ValueError(f"categories are declared for flat dimensions, not {sorted(unknown)}")
    defaults = {"purpose": PURPOSES, "sex": SEXES, "age_band": AGE_BANDS}
    axes = (
        Axis.calendar(year, closed_months),
        *(
            Axis.categorical(
                dimension,
                _categories(
                    dimension,
                    declared.get(dimension, defaults.get(dimension)),
                    {str(key[d]) for key in rows},
                ),
            )
            for d, dimension in enumerate(FLAT_DIMENSIONS, start=1)
        ),
    )
    skeleton = Cube(year=year, axes=axes, values={}, relations=(), known_empty=frozenset())
    values = {measure: [0] * skeleton.size for measure in MEASURES}
    for (month, *codes), counts in rows.items():
        index = skeleton.index([Period(year, Granularity.MONTH, month).label, *codes])
        for measure, count in counts.items():
            values[measure][index] = count

    empty = _known_empty_leaves(skeleton, known_empty)
    for measure, array in values.items():
        if any(array[i] for i in empty):
            raise ValueError(f"{measure} counts examinations in a cell declared impossible")

    relations = tuple(
        (lower, upper)
        for lower, upper in MEASURE_RELATIONS
        if all(values[lower][i] <= values[upper][i] for i in skeleton.leaves())
    )
    for array in values.values():
        _add_up(array, skeleton)
    return Cube(
        year=year,
        axes=axes,
        values=values,
        relations=relations,
        known_empty=empty,
        max_crossed=max_crossed,
    )


def _check_code(dimension: str, code: str, ok: bool) -> None:
    if not ok:
        raise ValueError(f"invalid {dimension} code {code!r}")


def _categories(dimension: str, declared: Sequence[str] | None, seen: set[str]) -> list[str]:
    if declared is None:
        return sorted(seen)
    unknown = seen - set(declared)
    if unknown:
        raise ValueError(f"{dimension} codes not declared: {sorted(unknown)}")
    if len(set(declared)) != len(declared):
        raise ValueError(f"{dimension} categories repeat")
    return list(declared)


def _known_empty_leaves(cube: Cube, patterns: Iterable[Mapping[str, str]]) -> frozenset[int]:
    rules = []
    for pattern in patterns:
        rule = {}
        for dimension, code in pattern.items():
            if dimension not in FLAT_DIMENSIONS:
                raise ValueError(f"known-empty patterns name flat dimensions, not {dimension!r}")
            axis = cube.axes[DIMENSIONS.index(dimension)]
            rule[DIMENSIONS.index(dimension)] = axis.position(code)
        rules.append(rule)
    if not rules:
        return frozenset()
    return frozenset(
        leaf
        for leaf in cube.leaves()
        if any(all(cube.positions(leaf)[d] == p for d, p in rule.items()) for rule in rules)
    )


def _add_up(array: list[int], cube: Cube) -> None:
    """Fill every total from the microcells, one dimension at a time (children before parents)."""
    for axis, stride in zip(cube.axes, cube.strides, strict=True):
        block = stride * len(axis)
        sums = [(code, kids) for code, kids in enumerate(axis.children) if kids]
        for start in range(0, cube.size, block):
            for code, kids in sums:
                target = start + code * stride
                if stride == 1:
                    array[target] = sum(array[start + kid] for kid in kids)
                    continue
                parts = [array[start + kid * stride : start + (kid + 1) * stride] for kid in kids]
                array[target : target + stride] = [sum(col) for col in zip(*parts, strict=True)]

"""Cell suppression that survives subtraction from every published total.

The rule, applied to every measure over the canonical cube of a calendar year (the months, the
complete quarters and the year, crossed with every category and ``all`` total, up to the
crossing allowed for each period length):

* primary suppression: a count from 1 to k-1; and a clinical finding that every examined person
  in the cell has (count >= 1 and equal to ``examined``), since publishing it states the finding
  for each person in the group;
* protection: take every published cell of every measure, every published total, and the
  relations between measures (hiv-confirmed <= hiv-reactive-screening <= examined, ...). Over
  all non-negative tables that agree with them, each primary count v must be able to be 0 and
  to be v + 1. The attacker can neither tell whether anybody in the cell has the finding nor
  derive the count. For a group-attribute cell, the count must be able to be v - 1 (not
  everybody has it).

`protect` proves the rule with a witness per primary cell and direction (see `witness`), and
`audit` checks those proofs from scratch. The pattern for k contains the pattern for every
smaller k, so releases made at different thresholds cannot uncover each other's cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import product

from registry.surveillance.cube import CLINICAL_FINDINGS, Cube
from registry.surveillance.optimum import SolverReport
from registry.surveillance.witness import (
    COMPLEMENTARY,
    COST_BY_COARSENESS,
    COST_BY_VALUE,
    HIDDEN,
    PRIMARY,
    PUBLISHED,
    Direction,
    Search,
    Witness,
)

MIN_K = 3
DEFAULT_K = 5
METHOD_NAME = "cell-suppression-with-witnesses"
METHOD_VERSION = "1.2"


class Flag(StrEnum):
    PUBLISHED = "published"
    SUPPRESSED_PRIMARY = "suppressed-primary"
    SUPPRESSED_COMPLEMENTARY = "suppressed-complementary"


@dataclass(frozen=True)
class ProtectedCube:
    """A cube with its suppression pattern and proofs; every extract of the year projects it."""

    cube: Cube
    k: int
    status: Mapping[str, bytes]
    witnesses: tuple[Witness, ...]

    def flag(self, measure: str, index: int) -> Flag:
        """Whether a cell is published, and if not why (for audit; releases say 'suppressed')."""
        state = self.status[measure][index]
        if state == HIDDEN:
            raise ValueError(f"{self.cube.key(index)} is finer than any published table")
        if state == PUBLISHED:
            return Flag.PUBLISHED
        if state == PRIMARY:
            return Flag.SUPPRESSED_PRIMARY
        return Flag.SUPPRESSED_COMPLEMENTARY

    def published_value(self, measure: str, index: int) -> int | None:
        """The count, or None when it is suppressed or never published."""
        if self.status[measure][index] != PUBLISHED:
            return None
        return self.cube.values[measure][index]


def method_statement(k: int, rounding: int | None = None) -> dict[str, object]:
    """The method block every release carries."""
    return {
        "name": METHOD_NAME,
        "version": METHOD_VERSION,
        "k": k,
        "rounding": rounding,
        "primary": (
            f"counts from 1 to {k - 1}; clinical findings that every examined person in the "
            "cell has"
        ),
        "protection": (
            "given every published count, total and relation between measures, each suppressed "
            "count could be 0 and could be one more than it is"
        ),
        "canonical_tables": (
            "calendar year: months (totals and one-way tables), quarters and year (up to "
            "two-way tables); every extract is a projection of the same protected tables"
        ),
    }


def sensitivity(cube: Cube, measure: str, index: int, k: int) -> tuple[int, int] | None:
    """How far a primary cell must be movable (down, up); None for a cell that is not primary."""
    value = cube.values[measure][index]
    if 1 <= value < k:
        return value, 1
    if value >= 1 and measure in CLINICAL_FINDINGS and value == cube.values["examined"][index]:
        return 1, 0
    return None


def check_k(k: int) -> None:
    """Refuse a threshold below the floor of the method."""
    if isinstance(k, bool) or not isinstance(k, int) or k < MIN_K:
        raise ValueError(f"k must be an integer of at least {MIN_K}")


def protect(
    cube: Cube,
    *,
    k: int = DEFAULT_K,
    prices: Mapping[str, Sequence[int]] | None = None,
    report: SolverReport | None = None,
) -> ProtectedCube:
    """Suppress and prove the canonical cube at threshold k; deterministic in the data.

    Method 1.2: the complementary cells of each period and measure are chosen by a covering
    program (HiGHS, within 1 % of its optimum) where the module is small enough, greedily
    otherwise (`optimum.MODULE_TARGETS`). `prices` (a count per measure and cell of the cube's
    shape) prices each complementary cell instead of the cube's own counts: a layer of the
    release ledger is priced by the counts that its withheld cells take out of the release.
    `report` receives what the solver did.
    """
    return _protect(cube, k=k, base=COST_BY_VALUE, optimise=True, prices=prices, report=report)


def protect_greedy(
    cube: Cube, *, k: int = DEFAULT_K, prices: Mapping[str, Sequence[int]] | None = None
) -> ProtectedCube:
    """Method 1.1, every witness chosen greedily: for a new threshold of counts whose other
    thresholds 1.1 protected (patterns stored before 1.2 stay nested), and for comparison."""
    return _protect(cube, k=k, base=COST_BY_VALUE, prices=prices)


def protect_by_coarseness(cube: Cube, *, k: int = DEFAULT_K) -> ProtectedCube:
    """Method 1.0, cells priced by table coarseness first: kept for comparison (bench/)."""
    return _protect(cube, k=k, base=COST_BY_COARSENESS)


def protect_optimal(
    cube: Cube, *, k: int = DEFAULT_K, report: SolverReport | None = None
) -> ProtectedCube:
    """Every module given to the covering program, whatever its size: for measurement (bench/).

    Measured against `protect` in bench/suppression.py (docs/surveillance.md, section 6).
    """
    return _protect(cube, k=k, base=COST_BY_VALUE, optimise=True, report=report, module_limit=10**9)


def _protect(
    cube: Cube,
    *,
    k: int,
    base: float,
    optimise: bool = False,
    report: SolverReport | None = None,
    prices: Mapping[str, Sequence[int]] | None = None,
    module_limit: int | None = None,
) -> ProtectedCube:
    check_k(k)
    search = Search(cube, sensitivity, base=base, optimise=optimise, prices=prices)
    if report is not None:
        search.solver = report
    if module_limit is not None:
        search.module_limit = module_limit
    return protected_by(search, k)


def protected_by(search: Search, k: int) -> ProtectedCube:
    """Run a search at every threshold up to k (nested) and keep its pattern and witnesses."""
    for threshold in range(MIN_K, k + 1):
        search.protect_at(threshold)
    return ProtectedCube(
        cube=search.cube,
        k=k,
        status={m: bytes(search.status[m]) for m in search.cube.measures},
        witnesses=tuple(search.witnesses()),
    )


def primary_cells(protected: ProtectedCube) -> Iterator[tuple[str, int]]:
    """Every (measure, cell) of the canonical tables the primary rule suppresses."""
    cube = protected.cube
    for measure in cube.measures:
        for index in range(cube.size):
            if cube.publishable(index) and sensitivity(cube, measure, index, protected.k):
                yield measure, index


def lift_changes(cube: Cube, changes: Mapping[int, float]) -> dict[int, float]:
    """Net change of every cell (microcells and totals) under a change to the microcells."""
    out: dict[int, float] = {}
    for leaf, change in changes.items():
        lines = [
            [c * stride for c in axis.lineage[p]]
            for axis, p, stride in zip(cube.axes, cube.positions(leaf), cube.strides, strict=True)
        ]
        for parts in product(*lines):
            cell = sum(parts)
            out[cell] = out.get(cell, 0.0) + change
    return {cell: c for cell, c in out.items() if abs(c) > 1e-9}


def audit(protected: ProtectedCube) -> list[str]:
    """Check every proof from scratch; an empty list means every primary cell is protected."""
    cube = protected.cube
    problems: list[str] = []
    proved: dict[tuple[str, int, Direction], float] = {}
    lifted: dict[int, dict[str, dict[int, float]]] = {}
    for witness in protected.witnesses:
        key = id(witness.changes)
        if key not in lifted:
            problems.extend(_audit_changes(protected, witness.changes))
            lifted[key] = {m: lift_changes(cube, c) for m, c in witness.changes.items()}
        moved = lifted[key].get(witness.measure, {}).get(witness.cell, 0.0)
        enough = -moved if witness.direction is Direction.DOWN else moved
        if enough < witness.required - 1e-6:
            problems.append(
                f"{witness.measure} {cube.key(witness.cell)} {witness.direction}: "
                f"moves by {moved}, needs {witness.required}"
            )
            continue
        slot = (witness.measure, witness.cell, witness.direction)
        proved[slot] = max(proved.get(slot, 0.0), witness.required)
    for measure, index in primary_cells(protected):
        need = sensitivity(cube, measure, index, protected.k)
        assert need is not None
        if protected.status[measure][index] not in (PRIMARY, COMPLEMENTARY):
            problems.append(f"{measure} {cube.key(index)} is sensitive and published")
        for direction, amount in zip(Direction, need, strict=True):
            if amount and proved.get((measure, index, direction), 0.0) < amount - 1e-6:
                problems.append(f"{measure} {cube.key(index)} has no {direction} witness")
    return problems


def _audit_changes(
    protected: ProtectedCube, changes: Mapping[str, Mapping[int, float]]
) -> Iterator[str]:
    cube = protected.cube
    for measure, moves in changes.items():
        values = cube.values[measure]
        for leaf, change in moves.items():
            if values[leaf] + change < -1e-6:
                yield f"a witness takes {measure} below zero at {cube.key(leaf)}"
            if change and leaf in cube.known_empty:
                yield f"a witness counts {measure} in the impossible cell {cube.key(leaf)}"
        for cell, change in lift_changes(cube, moves).items():
            if protected.status[measure][cell] == PUBLISHED:
                yield f"a witness changes published {measure} {cube.key(cell)} by {change}"
    for lower, upper in cube.relations:
        low, up = changes.get(lower, {}), changes.get(upper, {})
        for leaf in {*low, *up}:
            if cube.values[lower][leaf] + low.get(leaf, 0) > (
                cube.values[upper][leaf] + up.get(leaf, 0) + 1e-6
            ):
                yield f"a witness breaks {lower} <= {upper} at {cube.key(leaf)}"

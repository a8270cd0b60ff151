"""The attacker's linear program: how far published counts pin down each suppressed count.

Variables are the microcells of every measure (never published); constraints are every
published count (at any level), the relations between measures in each microcell, and the
microcells known to be impossible. For a suppressed cell, the minimum and maximum of its sum
over the microcells beneath it is the attacker's feasible interval.

Microcells under a published zero are zero (counts are non-negative), and so is a count bounded
by one of them; they are fixed before solving, which keeps the programs small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix

from registry.surveillance.cube import Cube
from registry.surveillance.disclosure import lift_changes

Cell = tuple[str, int]  # (measure, cube index)


class Attacker:
    """Everything an attacker can write down from a set of published counts."""

    def __init__(self, cube: Cube, published: Mapping[Cell, float]) -> None:
        self.cube = cube
        leaves = sorted(cube.leaves())
        under: dict[int, list[int]] = {}
        for leaf in leaves:
            for cell in lift_changes(cube, {leaf: 1.0}):
                under.setdefault(cell, []).append(leaf)
        self.under = under
        zero = {
            (measure, leaf)
            for (measure, cell), value in published.items()
            if value == 0
            for leaf in under[cell]
        }
        zero |= {(m, leaf) for m in cube.measures for leaf in cube.known_empty}
        grown = True
        while grown:  # a count bounded by a zero count is zero too
            before = len(zero)
            for lower, upper in cube.relations:
                zero |= {(lower, leaf) for (m, leaf) in list(zero) if m == upper}
            grown = len(zero) > before
        self.zero = zero
        free = [(m, leaf) for m in cube.measures for leaf in leaves if (m, leaf) not in zero]
        self.column = {key: n for n, key in enumerate(free)}
        rows, cols, data, rhs = [], [], [], []
        for (measure, cell), value in sorted(published.items()):
            live = [
                self.column[(measure, leaf)]
                for leaf in under[cell]
                if (measure, leaf) in self.column
            ]
            if not live:
                assert value == 0, f"published {value} over microcells fixed at zero"
                continue
            r = len(rhs)
            rows += [r] * len(live)
            cols += live
            data += [1.0] * len(live)
            rhs.append(float(value))
        size = len(free)
        self.a_eq = csr_matrix(coo_matrix((data, (rows, cols)), shape=(len(rhs), size)))
        self.b_eq = np.array(rhs)
        ub_rows, ub_cols, ub_data = [], [], []
        for lower, upper in cube.relations:
            for leaf in leaves:
                low = self.column.get((lower, leaf))
                up = self.column.get((upper, leaf))
                if low is None:
                    continue
                assert up is not None, "a bounded count cannot be free under a zero bound"
                r = len(ub_rows) // 2
                ub_rows += [r, r]
                ub_cols += [low, up]
                ub_data += [1.0, -1.0]
        count = len(ub_rows) // 2
        self.a_ub = (
            csr_matrix(coo_matrix((ub_data, (ub_rows, ub_cols)), shape=(count, size)))
            if count
            else None
        )
        self.b_ub = np.zeros(count) if count else None

    def interval(self, measure: str, cell: int) -> tuple[float, float]:
        """Smallest and largest value of a cell over every table consistent with the release."""
        objective = np.zeros(len(self.column))
        live = [
            self.column[(measure, leaf)]
            for leaf in self.under[cell]
            if (measure, leaf) in self.column
        ]
        if not live:
            return 0.0, 0.0
        objective[live] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            result = linprog(
                sign * objective,
                A_ub=self.a_ub,
                b_ub=self.b_ub,
                A_eq=self.a_eq,
                b_eq=self.b_eq,
                bounds=(0, None),
                method="highs",
            )
            if result.status == 3:  # unbounded above
                ends.append(float("inf"))
                continue
            assert result.status == 0, result.message
            ends.append(sign * result.fun)
        return ends[0], ends[1]


class LayeredAttacker:
    """The attacker of several releases cut from different data versions of one year.

    Each *block* is a table of non-negative microcells (the counts of one data version, or the
    records added between two versions); a release publishes counts of a cube whose every cell
    is the sum of the named blocks' microcells beneath it. Version 2 = version 1 + late records
    is written as two blocks, x1 and d >= 0, with version 2's cells published over x1 + d.
    The relations between measures hold in every block (they hold for every record).
    """

    def __init__(
        self,
        blocks: Mapping[str, Cube],
        releases: Sequence[tuple[Cube, Mapping[Cell, float], Sequence[str]]],
        relations: Sequence[tuple[str, str]],
    ) -> None:
        self.blocks = blocks
        self._under: dict[int, dict[int, list[tuple[str, ...]]]] = {}
        leaf_keys = {
            name: {tuple(cube.key(leaf)) for leaf in cube.leaves()} for name, cube in blocks.items()
        }
        empty = {
            (name, m, tuple(cube.key(leaf)))
            for name, cube in blocks.items()
            for m in cube.measures
            for leaf in cube.known_empty
        }
        measures = next(iter(blocks.values())).measures
        variables = [
            (name, m, key) for name in blocks for m in measures for key in sorted(leaf_keys[name])
        ]
        equations = []
        zero = set(empty)
        for cube, published, names in releases:
            for (measure, cell), value in sorted(published.items()):
                terms = [
                    (name, measure, key)
                    for key in self.under(cube, cell)
                    for name in names
                    if key in leaf_keys[name]
                ]
                if value == 0:
                    zero.update(terms)
                equations.append((terms, float(value)))
        grown = True
        while grown:  # a count bounded by a zero count is zero too
            before = len(zero)
            for lower, upper in relations:
                zero |= {(n, lower, key) for (n, m, key) in list(zero) if m == upper}
            grown = len(zero) > before
        self.column = {v: i for i, v in enumerate(v for v in variables if v not in zero)}
        rows, cols, data, rhs = [], [], [], []
        for terms, value in equations:
            live = [self.column[t] for t in terms if t in self.column]
            if not live:
                assert value == 0, f"published {value} over microcells fixed at zero"
                continue
            rows += [len(rhs)] * len(live)
            cols += live
            data += [1.0] * len(live)
            rhs.append(value)
        size = len(self.column)
        self.a_eq = csr_matrix(coo_matrix((data, (rows, cols)), shape=(len(rhs), size)))
        self.b_eq = np.array(rhs)
        ub_rows, ub_cols, ub_data = [], [], []
        for name in blocks:
            for lower, upper in relations:
                for key in leaf_keys[name]:
                    low = self.column.get((name, lower, key))
                    if low is None:
                        continue
                    r = len(ub_rows) // 2
                    ub_rows += [r, r]
                    ub_cols += [low, self.column[(name, upper, key)]]
                    ub_data += [1.0, -1.0]
        count = len(ub_rows) // 2
        self.a_ub = (
            csr_matrix(coo_matrix((ub_data, (ub_rows, ub_cols)), shape=(count, size)))
            if count
            else None
        )
        self.b_ub = np.zeros(count) if count else None

    def under(self, cube: Cube, cell: int) -> list[tuple[str, ...]]:
        """Keys of the microcells of `cube` beneath a cell."""
        found = self._under.get(id(cube))
        if found is None:
            found = {}
            for leaf in cube.leaves():
                for above in lift_changes(cube, {leaf: 1.0}):
                    found.setdefault(above, []).append(tuple(cube.key(leaf)))
            self._under[id(cube)] = found
        return found[cell]

    def interval(
        self, cube: Cube, measure: str, cell: int, names: Sequence[str]
    ) -> tuple[float, float]:
        """Smallest and largest value of a cell of `cube` (a sum of `names`) the releases allow."""
        objective = np.zeros(len(self.column))
        live = [
            self.column[(name, measure, key)]
            for key in self.under(cube, cell)
            for name in names
            if (name, measure, key) in self.column
        ]
        if not live:
            return 0.0, 0.0
        objective[live] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            result = linprog(
                sign * objective,
                A_ub=self.a_ub,
                b_ub=self.b_ub,
                A_eq=self.a_eq,
                b_eq=self.b_eq,
                bounds=(0, None),
                method="highs",
            )
            if result.status == 3:
                ends.append(float("inf"))
                continue
            assert result.status == 0, result.message
            ends.append(sign * result.fun)
        return ends[0], ends[1]

"""The attacker's linear program: how far published counts pin down each suppressed count.

Variables are the microcells of every measure (never published); constraints are every
published count (at any level), the relations between measures in each microcell, and the
microcells known to be impossible. For a suppressed cell, the minimum and maximum of its sum
over the microcells beneath it is the attacker's feasible interval.

Microcells under a published zero are zero (counts are non-negative), and so is a count bounded
by one of them; they are fixed before solving, which keeps the programs small.

The constraints stay the same for every cell asked about, only the objective changes: one HiGHS
model is kept and re-solved from its last optimal basis by the primal simplex method (that basis
stays feasible when only the objective changes), and a cell whose microcells were asked about
before is answered from memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize._highspy import _core as highs  # the HiGHS that scipy.optimize.linprog runs
from scipy.sparse import coo_matrix, csr_matrix, vstack

from registry.surveillance.cube import Cube
from registry.surveillance.disclosure import lift_changes

Cell = tuple[str, int]  # (measure, cube index)
UNBOUNDED = (highs.HighsModelStatus.kUnbounded, highs.HighsModelStatus.kUnboundedOrInfeasible)


def at_most(pairs: list[tuple[int, int]], size: int) -> csr_matrix | None:
    """Rows ``x[low] - x[up] <= 0``, one per (low, up) column pair; None when there are none."""
    if not pairs:
        return None
    rows = [r for r in range(len(pairs)) for _ in (0, 1)]
    columns = [column for pair in pairs for column in pair]
    data = [1.0, -1.0] * len(pairs)
    return csr_matrix(coo_matrix((data, (rows, columns)), shape=(len(pairs), size)))


class Program:
    """Non-negative variables with ``a_eq x = b_eq`` and ``a_ub x <= 0``: the extent of a sum."""

    def __init__(self, a_eq: csr_matrix, b_eq: np.ndarray, a_ub: csr_matrix | None) -> None:
        self._solver = highs._Highs()
        self._solver.setOptionValue("output_flag", False)
        self._solver.setOptionValue("simplex_strategy", 4)  # primal: warm from the last basis
        infinity = self._solver.getInfinity()
        size = a_eq.shape[1]
        bounded = a_ub.shape[0] if a_ub is not None else 0
        matrix = csr_matrix(vstack([a_eq, a_ub])) if a_ub is not None else a_eq  # a_ub x <= 0
        rows = highs.HighsSparseMatrix()
        rows.format_ = highs.MatrixFormat.kRowwise
        rows.num_col_, rows.num_row_ = size, matrix.shape[0]
        rows.start_ = matrix.indptr.astype(np.int32)
        rows.index_ = matrix.indices.astype(np.int32)
        rows.value_ = matrix.data.astype(np.float64)
        program = highs.HighsLp()
        program.num_col_, program.num_row_ = size, matrix.shape[0]
        program.col_cost_ = np.zeros(size)
        program.col_lower_, program.col_upper_ = np.zeros(size), np.full(size, infinity)
        program.row_lower_ = np.concatenate([b_eq, np.full(bounded, -infinity)])
        program.row_upper_ = np.concatenate([b_eq, np.zeros(bounded)])
        program.a_matrix_ = rows
        assert self._solver.passModel(program) == highs.HighsStatus.kOk
        self._costed = np.zeros(0, dtype=np.int32)
        self._known: dict[frozenset[int], tuple[float, float]] = {}

    def extent(self, columns: Sequence[int]) -> tuple[float, float]:
        """Smallest and largest value of the sum of ``columns`` (inf when unbounded above)."""
        key = frozenset(columns)
        if not key:
            return 0.0, 0.0
        if key in self._known:
            return self._known[key]
        solver = self._solver
        chosen = np.array(sorted(key), dtype=np.int32)
        solver.changeColsCost(len(self._costed), self._costed, np.zeros(len(self._costed)))
        solver.changeColsCost(len(chosen), chosen, np.ones(len(chosen)))
        self._costed = chosen
        ends = []
        for sense in (highs.ObjSense.kMinimize, highs.ObjSense.kMaximize):
            solver.changeObjectiveSense(sense)
            solver.run()
            status = solver.getModelStatus()
            if status in UNBOUNDED:
                ends.append(float("inf"))
                continue
            assert status == highs.HighsModelStatus.kOptimal, solver.modelStatusToString(status)
            ends.append(solver.getInfo().objective_function_value)
        self._known[key] = (ends[0], ends[1])
        return self._known[key]


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
        pairs = []
        for lower, upper in cube.relations:
            for leaf in leaves:
                low = self.column.get((lower, leaf))
                up = self.column.get((upper, leaf))
                if low is None:
                    continue
                assert up is not None, "a bounded count cannot be free under a zero bound"
                pairs.append((low, up))
        self.a_ub = at_most(pairs, size)
        self.program = Program(self.a_eq, self.b_eq, self.a_ub)

    def interval(self, measure: str, cell: int) -> tuple[float, float]:
        """Smallest and largest value of a cell over every table consistent with the release."""
        live = [
            self.column[(measure, leaf)]
            for leaf in self.under[cell]
            if (measure, leaf) in self.column
        ]
        return self.program.extent(live)


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
        pairs = []
        for name in blocks:
            for lower, upper in relations:
                for key in leaf_keys[name]:
                    low = self.column.get((name, lower, key))
                    if low is not None:
                        pairs.append((low, self.column[(name, upper, key)]))
        self.a_ub = at_most(pairs, size)
        self.program = Program(self.a_eq, self.b_eq, self.a_ub)

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
        live = [
            self.column[(name, measure, key)]
            for key in self.under(cube, cell)
            for name in names
            if (name, measure, key) in self.column
        ]
        return self.program.extent(live)

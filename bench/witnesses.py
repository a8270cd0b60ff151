"""How much cheaper a witness could be than the hypercube shapes find: general witnesses.

A witness (registry/surveillance/witness.py) is a change to the microcells that keeps every
published cell, moves one primary cell to its bound and suppresses what it touches. Releases
build witnesses from hypercube shapes. Here the same question is put to HiGHS in general: over
every microcell of the target's quarter (of the year, for a yearly cell), with the other
measures held fixed (so every relation between measures becomes a bound on each microcell),
find the integer change that suppresses the cheapest published cells, each priced as in
releases (its count plus one). The primary cells of k = 5 count as suppressed already.

For the targets whose cheapest shape costs most (the ones that cost the rare findings their
quarterly tables), it reports the shape's cost, the cost of the linear relaxation (a change in
fractions of a person, which an attacker restricted to whole counts could rule out, so never a
witness in releases) and the cost of the integer witness HiGHS finds within a node limit, with
its time. No target: it measures whether general witnesses are worth building
(docs/surveillance.md, section 6).
"""

from __future__ import annotations

import os
import statistics
import time
from itertools import product

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, hstack

from bench.common import Measurement
from bench.suppression import K, pilot_year, withheld
from registry.surveillance.cube import CLINICAL_FINDINGS, Cube, Granularity
from registry.surveillance.disclosure import (
    ProtectedCube,
    audit,
    lift_changes,
    protect,
    protected_by,
    sensitivity,
)
from registry.surveillance.witness import (
    PRIMARY,
    PUBLISHED,
    Direction,
    Search,
    _Candidate,
    _Target,
)

SAMPLE = int(os.environ.get("BENCH_WITNESSES_SAMPLE", "24"))
NODE_LIMIT = int(os.environ.get("BENCH_WITNESSES_NODES", "500"))
EXAMINED = "examined"  # the bound of every finding: its cells are large, it never moves here
# a general witness is sought where the cheapest shape costs more than this (bench only)
THRESHOLD = float(os.environ.get("BENCH_WITNESSES_THRESHOLD", "3000"))


class Program:
    """One target's general-witness program: integer changes to the microcells of its scope.

    `D_c` is the net change of a cell. A published cell may change only if its indicator `z_c`
    is 1 (`|D_c| <= 2 x amount x z_c`), at the cell's price; a suppressed cell changes freely.
    Each microcell moves by at most the amount, within the bounds the other measures set. With
    `coupled`, the measures directly related to the target's (but `examined`) move too, each
    within the bounds of the measures that stay fixed, and the relations between the moving
    ones hold in every microcell.
    """

    def __init__(
        self,
        search: Search,
        measure: str,
        index: int,
        direction: Direction,
        amount: float,
        *,
        coupled: bool = False,
    ) -> None:
        cube = search.cube
        self.search = search
        self.amount = amount
        self.measure, self.index, self.direction = measure, index, direction
        related = [*search.uppers[measure], *search.lowers[measure]] if coupled else []
        self.measures = [measure, *(m for m in related if m != EXAMINED)]
        time_axis = cube.axes[0]
        position = cube.positions(index)[0]
        if cube.period(index).granularity is Granularity.MONTH:
            position = time_axis.parents[position]
        flat = product(*(range(axis.leaf_count) for axis in cube.axes[1:]))
        offsets = [sum(p * s for p, s in zip(pos, cube.strides[1:], strict=True)) for pos in flat]
        leaves = [
            month * cube.strides[0] + offset
            for month in time_axis.leaves_under[position]
            for offset in offsets
            if month * cube.strides[0] + offset not in cube.known_empty
        ]
        self.columns: list[tuple[str, int]] = []
        low: list[float] = []
        high: list[float] = []
        for of in self.measures:
            values = search.values[of]
            uppers = [search.values[u] for u in search.uppers[of] if u not in self.measures]
            lowers = [search.values[lo] for lo in search.lowers[of] if lo not in self.measures]
            for leaf in leaves:
                x = float(values[leaf])
                up = min([u[leaf] for u in uppers], default=x + amount) - x
                down = max([lo[leaf] for lo in lowers], default=0) - x
                up, down = min(up, amount), max(down, -amount)
                if up > 0 or down < 0:
                    self.columns.append((of, leaf))
                    low.append(down)
                    high.append(up)
        column_of = {key: c for c, key in enumerate(self.columns)}
        n = len(self.columns)
        rows: dict[tuple[str, int], int] = {}
        entries: list[tuple[int, int]] = []
        for column, (of, leaf) in enumerate(self.columns):
            for cell in search._ancestors(leaf):
                entries.append((rows.setdefault((of, cell), len(rows)), column))
        self.priced = [key for key in rows if search.status[key[0]][key[1]] == PUBLISHED]
        self.prices = [search.costs[of][cell] for of, cell in self.priced]
        self.feasible = (measure, index) in rows
        if not self.feasible:
            return
        sums = csr_matrix(
            coo_matrix((np.ones(len(entries)), tuple(np.array(entries).T)), shape=(len(rows), n))
        )
        picked = sums[[rows[key] for key in self.priced]]
        k = len(self.priced)
        indicator = csr_matrix(coo_matrix((np.full(k, 2 * amount), (range(k),) * 2), shape=(k, k)))
        target = hstack([sums[[rows[(measure, index)]]], csr_matrix((1, k))])
        bound = (-np.inf, -amount) if direction is Direction.DOWN else (amount, np.inf)
        self.constraints = [
            LinearConstraint(hstack([picked, -indicator]), -np.inf, 0),
            LinearConstraint(hstack([picked, indicator]), 0, np.inf),
            LinearConstraint(target, *bound),
        ]
        # lower + its change <= upper + its change, in every microcell, where both may move
        pairs: list[tuple[int | None, int | None, float]] = []
        for lower, upper in cube.relations:
            if lower in self.measures and upper in self.measures:
                for leaf in leaves:
                    a, b = column_of.get((lower, leaf)), column_of.get((upper, leaf))
                    if a is not None or b is not None:
                        room = search.values[upper][leaf] - search.values[lower][leaf]
                        pairs.append((a, b, float(room)))
        if pairs:
            triples = [(r, a, 1.0) for r, (a, _, _) in enumerate(pairs) if a is not None]
            triples += [(r, b, -1.0) for r, (_, b, _) in enumerate(pairs) if b is not None]
            r_, c_, v_ = zip(*triples, strict=True)
            relation = coo_matrix((v_, (r_, c_)), shape=(len(pairs), n + k))
            self.constraints.append(
                LinearConstraint(csr_matrix(relation), -np.inf, [room for *_, room in pairs])
            )
        self.objective = np.concatenate([np.zeros(n), np.asarray(self.prices)])
        self.bounds = Bounds(np.concatenate([low, np.zeros(k)]), np.concatenate([high, np.ones(k)]))

    def relaxed(self) -> float | None:
        """Cost of the cells the linear relaxation moves (a change in fractions of a person)."""
        result = milp(self.objective, constraints=self.constraints, bounds=self.bounds)
        if result.x is None:
            return None
        return self.cost(self._changes(result.x, whole=False))

    def integer(self) -> dict[str, dict[int, float]] | None:
        """The integer witness HiGHS finds within the node limit (None: none found)."""
        result = milp(
            self.objective,
            constraints=self.constraints,
            bounds=self.bounds,
            integrality=np.ones(len(self.objective)),
            options={"node_limit": NODE_LIMIT, "mip_rel_gap": 0.01},
        )
        if result.x is None:
            return None
        changes = self._changes(result.x, whole=True)
        self._check(changes)
        return changes

    def _changes(self, x: np.ndarray, *, whole: bool) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for (of, leaf), value in zip(self.columns, x[: len(self.columns)], strict=True):
            change = float(round(value)) if whole else float(value)
            if abs(change) > 1e-7:
                out.setdefault(of, {})[leaf] = change
        return out

    def cost(self, changes: dict[str, dict[int, float]]) -> float:
        return self.search.cost_of(self.search.touched(changes))

    def _check(self, changes: dict[str, dict[int, float]]) -> None:
        """The integer answer is a witness: within every bound, and the target moved enough."""
        search = self.search
        for of, moves in changes.items():
            for leaf, change in moves.items():
                assert search.values[of][leaf] + change >= 0
                assert leaf not in search.cube.known_empty
        for lower, upper in search.cube.relations:
            low, up = changes.get(lower, {}), changes.get(upper, {})
            for leaf in {*low, *up}:
                assert search.values[lower][leaf] + low.get(leaf, 0.0) <= (
                    search.values[upper][leaf] + up.get(leaf, 0.0)
                )
        moved = lift_changes(search.cube, changes.get(self.measure, {})).get(self.index, 0.0)
        assert (-moved if self.direction is Direction.DOWN else moved) >= self.amount


class GeneralSearch(Search):
    """The release search, offered a general integer witness wherever the cheapest shape costs
    more than `threshold` (at the price of everything suppressed so far)."""

    threshold = THRESHOLD
    coupled = False

    def __init__(self, cube: Cube) -> None:
        super().__init__(cube, sensitivity, optimise=True)
        self.programs = self.better = 0
        self.program_cpu = 0.0

    def _cheapest(self, target: _Target, *, keep: int, strict: bool = False) -> list[_Candidate]:
        best = super()._cheapest(target, keep=keep, strict=strict)
        if strict or not best or best[0].cost <= self.threshold:
            return best
        started = time.process_time()
        program = Program(
            self,
            target.measure,
            target.index,
            target.direction,
            target.amount,
            coupled=self.coupled,
        )
        changes = program.integer() if program.feasible else None
        self.programs += 1
        self.program_cpu += time.process_time() - started
        if changes is None:
            return best
        touched = self.touched(changes)
        found = _Candidate(cost=self.cost_of(touched), changes=changes, touched=touched)
        if found.cost >= best[0].cost:
            return best
        self.better += 1
        return sorted([found, *best], key=lambda c: c.cost)[:keep]


def general_release(cube: Cube) -> tuple[ProtectedCube, GeneralSearch]:
    """The release method with general witnesses added (as `disclosure.protect` runs it)."""
    search = GeneralSearch(cube)
    return protected_by(search, K), search


def primaries(cube: Cube) -> Search:
    """A search whose only suppressed cells are the primary cells of k = 5."""
    search = Search(cube, sensitivity, optimise=True)
    for measure in cube.measures:
        status = search.status[measure]
        for index in range(cube.size):
            if status[index] == PUBLISHED and sensitivity(cube, measure, index, K):
                status[index] = PRIMARY
    return search


def run() -> Measurement:
    cube = pilot_year()
    search = primaries(cube)
    targets = []
    started = time.process_time()
    for measure in CLINICAL_FINDINGS:
        status = search.status[measure]
        for index in range(cube.size):
            if status[index] != PRIMARY:
                continue
            need = sensitivity(cube, measure, index, K)
            assert need is not None
            for direction, amount in zip(Direction, need, strict=True):
                if amount:
                    found = search._find(search._target(measure, index, direction, float(amount)))
                    assert found is not None
                    targets.append((found.cost, measure, index, direction))
    shapes_cpu = time.process_time() - started
    targets.sort(key=lambda t: (-t[0], t[1], t[2], t[3]))
    figures: dict[str, object] = {
        "targets": len(targets),
        "shapes_cpu_s": round(shapes_cpu, 1),
        "sample": f"the {SAMPLE} targets whose cheapest shape costs most",
        "integer_node_limit": NODE_LIMIT,
    }
    ratios_relaxed: list[float] = []
    ratios_integer: list[float] = []
    seconds: list[float] = []
    solved = 0
    for shape_cost, measure, index, direction in targets[:SAMPLE]:
        need = sensitivity(cube, measure, index, K)
        assert need is not None
        required = float(need[0] if direction is Direction.DOWN else need[1])
        program = Program(search, measure, index, direction, required)
        label = f"{measure} {'/'.join(cube.key(index))} {direction.value}"
        if not program.feasible:
            figures[label] = f"shape {shape_cost:.0f}; no microcell of the scope can move"
            continue
        relaxed = program.relaxed()
        started = time.process_time()
        changes = program.integer()
        integer = None if changes is None else program.cost(changes)
        spent = time.process_time() - started
        seconds.append(spent)
        if relaxed is not None:
            ratios_relaxed.append(relaxed / shape_cost)
        if integer is not None:
            solved += 1
            ratios_integer.append(integer / shape_cost)
        figures[label] = (
            f"shape {shape_cost:.0f}; relaxation "
            f"{'none' if relaxed is None else f'{relaxed:.0f}'}; integer "
            f"{'none found' if integer is None else f'{integer:.0f}'} in {spent:.1f} s"
        )
    figures["relaxation_cost_over_shape_median"] = round(statistics.median(ratios_relaxed), 3)
    figures["integer_found"] = f"{solved} of {len(seconds)}"
    if ratios_integer:
        figures["integer_cost_over_shape_median"] = round(statistics.median(ratios_integer), 3)
        figures["integer_cost_over_shape_range"] = [
            round(min(ratios_integer), 3),
            round(max(ratios_integer), 3),
        ]
    figures["integer_cpu_s_median"] = round(statistics.median(seconds), 2)
    figures["integer_cpu_s_range"] = [round(min(seconds), 2), round(max(seconds), 2)]
    # The whole release, with general witnesses offered where shapes cost most.
    started = time.process_time()
    released = withheld(protect(cube, k=K))
    figures["release_cpu_s"] = round(time.process_time() - started, 1)
    started = time.process_time()
    protected, general = general_release(cube)
    figures["with_general_cpu_s"] = round(time.process_time() - started, 1)
    assert not audit(protected)
    with_general = withheld(protected)
    figures["with_general_programs"] = (
        f"{general.programs} programs above {THRESHOLD:.0f}, {general.better} cheaper than the "
        f"shapes, {general.program_cpu:.0f} s CPU in them"
    )
    for name, result in (("release", released), ("with_general", with_general)):
        figures[f"{name}_count_withheld"] = sum(r["count_withheld"] for r in result.values())
    for measure in CLINICAL_FINDINGS:
        before, after = released[measure], with_general[measure]
        figures[f"{measure}:release -> with general"] = (
            f"count {before['count_share']:.1%} -> {after['count_share']:.1%}, worst quarterly "
            f"one-way {before['worst_quarter_one_way']:.1%} -> "
            f"{after['worst_quarter_one_way']:.1%}"
        )
    return Measurement(
        name="witnesses",
        target="none (measures whether general witnesses are worth building)",
        figures=figures,
        command=".venv/bin/python -m bench witnesses",
        notes=(
            "Same generated year as the suppression benchmark (seed 1, 20,000 examinations a "
            "month), k = 5; cells priced by count plus one, primary cells suppressed, nothing "
            "else. Shape: the cheapest hypercube witness (what releases can use). Relaxation: "
            "the same program without whole counts (not a witness an integer attacker must "
            "accept). Integer: HiGHS within the node limit over the target's quarter (its "
            "year for a yearly cell), other measures fixed: 'none' where a count cannot move "
            "without another measure (an HIV-reactive count drained to 0 takes the HIV-confirmed "
            "count beneath it along). With general: the release method (1.2) with the integer "
            "program offered wherever the cheapest shape costs more than the threshold."
        ),
    )

"""The search behind disclosure control: which cells to suppress, and the proof that it is enough.

A *witness* for a suppressed primary cell is a change to the microcells (the finest counts, which
are never published) that keeps every published cell of every measure the same, keeps every
count non-negative and every relation between measures true, and moves the primary cell to the
bound the rule asks for. The release cannot tell the true table from the changed one, so the
attacker's interval for that cell reaches the bound. Witnesses only ever touch suppressed (or
never-published) cells, so suppressing more cannot break one.

Witnesses are built from generalised hypercubes: on each dimension where the target is a
category, the change either follows the cell up into its totals or is balanced by the opposite
change in another category (or month); on the dimensions where the target is a total, it sits on
the target's own microcells. Each corner of the hypercube places its change on microcells that
can give it (parallel to the target where possible, on its own microcells otherwise, which costs
the finer cells it touches). Shapes are enumerated by branch and bound on the cost of the cells
they would newly suppress, each cell priced by its count (the information its loss costs), so a
cell of thousands is never given up where a few small ones do. Moving the cell together with
every total above it is always a witness, so the search always ends.

With `optimise` (method 1.2, what releases use), the targets are taken one module at a time
(one period and one measure): a module of at most `optimum.MODULE_TARGETS` targets gets the
set of witnesses a covering program chooses among each target's few cheapest (`optimum.choose`),
a larger one, or one the solver leaves, the greedy choice (each target its cheapest witness in
turn, method 1.1). Then every complementary cell is offered back, largest first: it is published
again if each witness that leaned on it can be replaced by one among the cells still suppressed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import product

from registry.surveillance.cube import Cube
from registry.surveillance.optimum import MODULE_TARGETS, SolverReport, choose

PUBLISHED = 0
PRIMARY = 1
COMPLEMENTARY = 2
HIDDEN = 3  # finer than the canonical table set: never published

# A cell's cost is (1 + its count) x BASE ** coarseness: one crossed dimension less counts for
# two steps, one period level longer (month, quarter, year) for one and a half. BASE 1 prices a
# cell by its count alone (the information lost); method 1.0 used 20, which gave up two-way
# cells of thousands to keep one-way cells of a few.
COST_BY_VALUE = 1.0
COST_BY_COARSENESS = 20.0
_PER_DIMENSION = 2.0
_PER_PERIOD_LEVEL = 1.5
# How a shape places its change: the whole hypercube with every corner parallel to the target,
# with a second month placed on its own, or with every losing corner placed on its own; or a
# transfer between the target and the one corner that differs on every swapped dimension.
_PARALLEL, _SLICED, _FREE, _TRANSFER = 0, 1, 2, 3
_EPS = 1e-9
KEEP = 5  # candidate witnesses per target offered to the optimisation
_UP = -1  # a dimension's choice: move with the cell's own totals instead of a partner category

Rule = Callable[[Cube, str, int, int], tuple[float, float] | None]


class Direction(StrEnum):
    DOWN = "down"  # the cell could be empty
    UP = "up"  # the cell could hold more than it does


@dataclass(frozen=True)
class Witness:
    """Microcell changes that keep every published count and move one primary cell to a bound."""

    measure: str
    cell: int
    direction: Direction
    required: float
    changes: Mapping[str, Mapping[int, float]]  # measure -> microcell index -> change


def choice_count(combo: Sequence[int]) -> int:
    """How many dimensions of a shape move to a partner category."""
    return sum(1 for c in combo if c != _UP)


class _Candidate:
    """A witness found for a target: the microcell changes and every published cell they move."""

    __slots__ = ("changes", "cost", "touched")

    def __init__(
        self,
        cost: float,
        changes: dict[str, dict[int, float]],
        touched: dict[str, dict[int, float]],
    ) -> None:
        self.cost = cost
        self.changes = changes
        self.touched = touched


class _Target:
    """One primary cell to move in one direction, with what every candidate shape reuses."""

    def __init__(
        self, cube: Cube, measure: str, index: int, direction: Direction, amount: float
    ) -> None:
        self.measure = measure
        self.index = index
        self.direction = direction
        self.amount = amount
        self.positions = cube.positions(index)
        axes = cube.axes
        self.totals = [j for j, axis in enumerate(axes) if self.positions[j] >= axis.leaf_count]
        self.free = [j for j in range(len(axes)) if j not in self.totals]
        # Offsets are split: `base` places the target on the dimensions where it is a category,
        # `points` are the microcells beneath it on the dimensions where it is a total.
        self.base = sum(self.positions[j] * cube.strides[j] for j in self.free)
        self.points = sorted(
            sum(p * cube.strides[j] for j, p in zip(self.totals, combo, strict=True))
            for combo in product(*(axes[j].leaves_under[self.positions[j]] for j in self.totals))
        )
        self.point_set = frozenset(self.points)
        # A quarter's change can be balanced by a month of another quarter: the year stays put.
        self.balances: list[int | None] = [None]
        time = axes[0]
        if 0 in self.totals and time.parents[self.positions[0]] >= 0:
            inside = set(time.leaves_under[self.positions[0]])
            self.balances += [m for m in range(time.leaf_count) if m not in inside]
        self.placements: dict[tuple[str, float], dict[int, float]] = {}
        self.lines: dict[tuple[int, int | None], list[int]] = {}  # Search._lines


class Search:
    """Suppression pattern and witnesses for one cube; deterministic."""

    def __init__(
        self,
        cube: Cube,
        rule: Rule,
        *,
        base: float = COST_BY_VALUE,
        optimise: bool = False,
        prices: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.cube = cube
        self.optimise = optimise
        self.module_limit = MODULE_TARGETS
        self.solver = SolverReport()
        self.rule = rule
        self.values = cube.values
        # the count a cell's loss is priced by: its own, unless the cube is a layer of a bigger
        # release (ledger.py), whose cells are lost with it
        self.prices = prices if prices is not None else cube.values
        self.hidden = bytes(0 if cube.publishable(i) else 1 for i in range(cube.size))
        self.status = {
            m: bytearray(HIDDEN if h else PUBLISHED for h in self.hidden) for m in cube.measures
        }
        self.weight = [base ** self._coarseness(i) for i in range(cube.size)]
        # what suppressing each cell costs: (1 + the count it prices) x its weight
        self.costs = {
            m: [(1 + p) * w for p, w in zip(self.prices[m], self.weight, strict=True)]
            for m in cube.measures
        }
        self.uppers = {m: [u for lo, u in cube.relations if lo == m] for m in cube.measures}
        self.lowers = {m: [lo for lo, u in cube.relations if u == m] for m in cube.measures}
        self._upper_values = {m: [self.values[u] for u in self.uppers[m]] for m in cube.measures}
        self._lower_values = {m: [self.values[lo] for lo in self.lowers[m]] for m in cube.measures}
        # The witness proving each primary cell in each direction: (amount required, witness).
        self.records: dict[tuple[str, int, Direction], tuple[float, _Candidate]] = {}
        self._ancestor_cache: dict[int, list[int]] = {}
        self._nonzero_cache: dict[tuple[str, int], list[int]] = {}
        # per strict search of a target's shape: the cells it touches, by measure
        self._touches: dict[tuple[object, ...], tuple[tuple[str, array[int]], ...] | None] = {}
        self._targets: dict[tuple[str, int, Direction, float], _Target] = {}

    # -- the passes -------------------------------------------------------------------------

    def protect_at(self, k: int) -> None:
        """Suppress and prove at threshold k, keeping every cell suppressed so far suppressed."""
        cube = self.cube
        frozen = {m: bytes(self.status[m]) for m in cube.measures}
        needs: dict[tuple[str, int], list[float]] = {}
        for measure in cube.measures:
            status = self.status[measure]
            for index in range(cube.size):
                if self.hidden[index]:
                    continue
                need = self.rule(cube, measure, index, k)
                if need is None:
                    continue
                status[index] = PRIMARY
                remaining = []
                for direction, amount in zip(Direction, need, strict=True):
                    record = self.records.get((measure, index, direction))
                    proved = record is not None and record[0] >= amount - _EPS
                    remaining.append(0.0 if proved else float(amount))
                needs[(measure, index)] = remaining
        # Coarse cells first: their witnesses decide which totals survive, and they often
        # protect the finer cells beneath them on the way.
        order = sorted(
            needs, key=lambda t: (-self._coarseness(t[1]), cube.measures.index(t[0]), t[1])
        )
        if self.optimise:
            for module in self._modules(order):
                open_targets = sum(1 for t in module for left in needs[t] if left > _EPS)
                if open_targets > self.module_limit:
                    self.solver.greedy_modules += 1
                    self._greedy(module, needs)
                elif not self._solve_module(module, needs):
                    self._greedy(module, needs)
        self._greedy(order, needs)
        self._prune(frozen)
        for measure in cube.measures:
            status = self.status[measure]
            for index in range(cube.size):
                if status[index] == PRIMARY and self.rule(cube, measure, index, k) is None:
                    status[index] = COMPLEMENTARY

    def _greedy(
        self, order: Sequence[tuple[str, int]], needs: dict[tuple[str, int], list[float]]
    ) -> None:
        """Give each cell still unproved, in `order`, its cheapest witness."""
        cube = self.cube
        for measure, index in order:
            remaining = needs[(measure, index)]
            for slot, direction in enumerate(Direction):
                if remaining[slot] <= _EPS:
                    continue
                found = self._find(self._target(measure, index, direction, remaining[slot]))
                if found is None:  # cannot happen: moving with every total above always works
                    raise AssertionError(f"no witness for {measure} {cube.key(index)}")
                self._accept(found, needs)

    def _target(self, measure: str, index: int, direction: Direction, amount: float) -> _Target:
        """The target of a cell and direction (kept: its offsets and placements are reused)."""
        key = (measure, index, direction, amount)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(self.cube, measure, index, direction, amount)
        return target

    def _modules(self, order: Sequence[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        """Targets grouped by period and measure, coarse periods first (as `order` has them)."""
        stride0 = self.cube.strides[0]
        modules: dict[tuple[int, str], list[tuple[str, int]]] = {}
        for measure, index in order:
            modules.setdefault((index // stride0, measure), []).append((measure, index))
        return list(modules.values())

    def _solve_module(
        self, module: Sequence[tuple[str, int]], needs: dict[tuple[str, int], list[float]]
    ) -> bool:
        """Protect one module's targets with the cheapest set of witnesses (`optimum.choose`);
        False when the solver leaves them to the greedy choice.

        Candidates are priced against everything suppressed so far, so a cell given up by an
        earlier module (a coarser period, or a measure before this one) is free here.
        """
        cube = self.cube
        targets = [
            (measure, index, direction, needs[(measure, index)][slot])
            for measure, index in module
            for slot, direction in enumerate(Direction)
            if needs[(measure, index)][slot] > _EPS
        ]
        if not targets:
            return True
        candidates: list[_Candidate] = []
        own: list[int] = []
        for measure, index, direction, amount in targets:
            found = self._cheapest(self._target(measure, index, direction, amount), keep=KEEP)
            if not found:  # cannot happen: moving with every total above always works
                raise AssertionError(f"no witness for {measure} {cube.key(index)}")
            own.append(len(candidates))
            candidates.extend(found)
        slot_of = {(m, i, d): t for t, (m, i, d, _) in enumerate(targets)}
        covers: list[list[int]] = [[first] for first in own]
        cell_ids: dict[tuple[str, int], int] = {}
        prices: list[float] = []
        suppresses: list[list[int]] = []
        for w, candidate in enumerate(candidates):
            cells = []
            for measure, touched in candidate.touched.items():
                status = self.status[measure]
                for cell, change in touched.items():
                    for direction in Direction:
                        t = slot_of.get((measure, cell, direction))
                        if t is None or w in covers[t]:
                            continue
                        moved = -change if direction is Direction.DOWN else change
                        if moved >= targets[t][3] - _EPS:
                            covers[t].append(w)
                    if status[cell] != PUBLISHED:
                        continue
                    key = (measure, cell)
                    if key not in cell_ids:
                        cell_ids[key] = len(prices)
                        prices.append(self.costs[measure][cell])
                    cells.append(cell_ids[key])
            suppresses.append(sorted(cells))
        chosen = choose(covers, suppresses, prices, self.solver)
        if chosen is None:
            return False
        for w in chosen:
            self._accept(candidates[w], needs)
        return True

    def witnesses(self) -> list[Witness]:
        """The current proof for every primary cell in every direction it needs."""
        return [
            Witness(measure=m, cell=c, direction=d, required=required, changes=found.changes)
            for (m, c, d), (required, found) in sorted(self.records.items())
        ]

    def _coarseness(self, index: int) -> float:
        """0 for the finest published cells; more for each uncrossed dimension and period level."""
        cube = self.cube
        level = ("month", "quarter", "year").index(cube.period(index).granularity)
        uncrossed = max(0, max(cube.max_crossed.values()) - cube.crossed(index))
        return _PER_DIMENSION * uncrossed + _PER_PERIOD_LEVEL * level

    def _accept(self, found: _Candidate, needs: dict[tuple[str, int], list[float]]) -> None:
        """Suppress what a witness touches and credit every primary cell it moves far enough."""
        for measure, touched in found.touched.items():
            status = self.status[measure]
            for cell, change in touched.items():
                if status[cell] == PUBLISHED:
                    status[cell] = COMPLEMENTARY
                need = needs.get((measure, cell))
                if need is None:
                    continue
                for slot, direction in enumerate(Direction):
                    moved = -change if direction is Direction.DOWN else change
                    if need[slot] > _EPS and moved >= need[slot] - _EPS:
                        self.records[(measure, cell, direction)] = (need[slot], found)
                        need[slot] = 0.0

    def _prune(self, frozen: Mapping[str, bytes]) -> None:
        """Publish again the complementary cells the witnesses can do without, coarsest first."""
        cube = self.cube
        users: dict[tuple[str, int], set[int]] = {}
        proves: dict[int, list[tuple[str, int, Direction]]] = {}
        for key, (_, found) in self.records.items():
            proves.setdefault(id(found), []).append(key)
        for found in {id(f): f for _, f in self.records.values()}.values():
            self._index(found, users)
        offers = [
            (measure, cell)
            for measure in cube.measures
            for cell in range(cube.size)
            if self.status[measure][cell] == COMPLEMENTARY and frozen[measure][cell] == PUBLISHED
        ]
        offers.sort(key=lambda mc: (-self.weight[mc[1]] * (1 + self.prices[mc[0]][mc[1]]), mc))
        for measure, cell in offers:
            leaning = sorted(users.get((measure, cell), ()))
            keys = [key for ident in leaning for key in proves.get(ident, [])]
            self.status[measure][cell] = PUBLISHED
            replacements: dict[tuple[str, int, Direction], _Candidate] = {}
            for key in keys:
                required = self.records[key][0]
                other = self._find(self._target(*key, required), strict=True)
                if other is None:
                    self.status[measure][cell] = COMPLEMENTARY
                    break
                replacements[key] = other
            else:
                for key, found in replacements.items():
                    old = self.records[key][1]
                    self.records[key] = (self.records[key][0], found)
                    proves.setdefault(id(found), []).append(key)
                    self._index(found, users)
                    left = [other for other in proves.get(id(old), []) if other != key]
                    if left:
                        proves[id(old)] = left
                    else:
                        proves.pop(id(old), None)
                        for of, cells in old.touched.items():
                            for touched in cells:
                                users.get((of, touched), set()).discard(id(old))

    @staticmethod
    def _index(found: _Candidate, users: dict[tuple[str, int], set[int]]) -> None:
        for measure, cells in found.touched.items():
            for cell in cells:
                users.setdefault((measure, cell), set()).add(id(found))

    # -- choosing a witness -----------------------------------------------------------------

    def _find(self, target: _Target, *, strict: bool = False) -> _Candidate | None:
        """Cheapest witness over every hypercube shape (None if there is none)."""
        found = self._cheapest(target, keep=1, strict=strict)
        return found[0] if found else None

    def _cheapest(self, target: _Target, *, keep: int, strict: bool = False) -> list[_Candidate]:
        """The `keep` cheapest witnesses that differ in what they suppress, by branch and bound.

        A shape's skeleton (the cells it moves at the target's own level of detail) is moved
        whatever the placement, so its cost bounds the witness's cost from below: shapes are
        tried cheapest bound first, until no bound can beat the `keep`-th best witness. A witness
        that costs nothing ends the search. With `strict`, only witnesses touching nothing
        published count.
        """
        options = [
            [_UP, *(b for b in range(self.cube.axes[j].leaf_count) if b != target.positions[j])]
            for j in target.free
        ]
        # A strict search only wants shapes that move nothing published: a bound stops counting
        # at its first published cell.
        limit = 0.0 if strict else float("inf")
        shapes: list[tuple[float, int, tuple[int, ...], int | None, tuple[int, ...]]] = []
        for order, (combo, balance) in enumerate(product(product(*options), target.balances)):
            modes: tuple[int, ...] = (_PARALLEL, _SLICED, _FREE)
            if balance is None and choice_count(combo) < 2:
                modes = (_PARALLEL, _FREE)
            shapes.append(
                (self._bound(target, combo, balance, limit), order, combo, balance, modes)
            )
            if balance is None and choice_count(combo) >= 2:
                bound = self._transfer_bound(target, combo, limit)
                shapes.append((bound, order, combo, balance, (_TRANSFER,)))
        if strict:
            shapes = [shape for shape in shapes if shape[0] <= 0]
        shapes.sort(key=lambda shape: (shape[0], shape[1]))
        best: list[_Candidate] = []  # cheapest first, each suppressing a different set
        seen: dict[frozenset[tuple[str, int]], int] = {}
        for bound, _, combo, balance, modes in shapes:
            if len(best) >= keep and bound >= best[keep - 1].cost - _EPS:
                break
            choice = dict(zip(target.free, combo, strict=True))
            for mode in modes:
                if mode == _SLICED and balance is None and choice.get(0, _UP) == _UP:
                    continue  # no second slice to place on its own
                found = self._evaluate(target, choice, balance, mode, strict)
                if found is None or (len(best) >= keep and found.cost >= best[-1].cost - _EPS):
                    continue
                if found.cost <= _EPS:
                    return [found]
                signature = self._signature(found)
                if signature in seen:
                    continue
                seen[signature] = 1
                best.append(found)
                best.sort(key=lambda c: c.cost)
                del best[keep:]
        return best

    def _signature(self, found: _Candidate) -> frozenset[tuple[str, int]]:
        """The published cells a witness would suppress."""
        return frozenset(
            (measure, cell)
            for measure, cells in found.touched.items()
            for cell in cells
            if self.status[measure][cell] == PUBLISHED
        )

    def _bound(
        self, target: _Target, combo: Sequence[int], balance: int | None, limit: float
    ) -> float:
        """Cost of the cells a shape moves at the target's own level: a floor for its witness.

        Counting stops once the bound exceeds `limit`.
        """
        cells = [target.index - target.base]
        for line in self._lines(target, combo, balance):
            cells = [cell + offset for cell in cells for offset in line]
        status = self.status[target.measure]
        costs = self.costs[target.measure]
        bound = 0.0
        for cell in cells:
            if status[cell] == PUBLISHED:  # never true of a hidden cell
                bound += costs[cell]
                if bound > limit:
                    break
        return bound

    def _lines(self, target: _Target, combo: Sequence[int], balance: int | None) -> list[list[int]]:
        """Offsets a shape moves on each dimension at the target's level (kept per target)."""
        cube = self.cube
        lines = []
        for j, choice in zip(target.free, combo, strict=True):
            line = target.lines.get((j, choice))
            if line is None:
                stride = cube.strides[j]
                mine = cube.axes[j].lineage[target.positions[j]]
                if choice == _UP:
                    line = [c * stride for c in mine]
                else:
                    theirs = cube.axes[j].lineage[choice]
                    line = [c * stride for c in sorted(set(mine) ^ set(theirs))]
                target.lines[(j, choice)] = line
            lines.append(line)
        if 0 in target.totals:
            # A quarter or the year: its change rises to the year unless balanced.
            line = target.lines.get((-1, balance))
            if line is None:
                time = cube.axes[0]
                here = target.positions[0]
                mine_set = set(time.lineage[here])
                moved = mine_set ^ set(time.lineage[balance]) if balance is not None else mine_set
                line = [(c - here) * cube.strides[0] for c in sorted(moved)]
                target.lines[(-1, balance)] = line
            lines.append(line)
        return lines

    def _transfer_bound(self, target: _Target, combo: Sequence[int], limit: float) -> float:
        """Floor for a transfer: cells above one end but not the other, at the target level
        (counting stops once it exceeds `limit`)."""
        cube = self.cube
        mine = [
            [c * cube.strides[j] for c in cube.axes[j].lineage[target.positions[j]]]
            for j in target.free
        ]
        theirs = [
            [
                c * cube.strides[j]
                for c in cube.axes[j].lineage[p if p != _UP else target.positions[j]]
            ]
            for j, p in zip(target.free, combo, strict=True)
        ]
        moved = set(map(sum, product(*mine))) ^ set(map(sum, product(*theirs)))
        levels = [0]
        if 0 in target.totals:
            here = target.positions[0]
            levels = [(c - here) * cube.strides[0] for c in cube.axes[0].lineage[here]]
        status = self.status[target.measure]
        costs = self.costs[target.measure]
        base = target.index - target.base
        bound = 0.0
        for offset in moved:
            for level in levels:
                cell = base + offset + level
                if status[cell] == PUBLISHED:  # never true of a hidden cell
                    bound += costs[cell]
                    if bound > limit:
                        return bound
        return bound

    def _evaluate(
        self,
        target: _Target,
        choice: Mapping[int, int],
        balance: int | None,
        mode: int,
        strict: bool,
    ) -> _Candidate | None:
        """Build one witness, let related measures follow, and price what it touches.

        What a shape changes depends on the counts only, never on what is suppressed, so the
        searches of the offering-back pass (strict, repeated for the same targets as cells are
        published again) build each shape once and only re-check what it touches.
        """
        if strict:
            # Only what the shape touches is kept (compactly); a shape that touches nothing
            # published, the rare success, is built again to be returned.
            key = (
                target.measure,
                target.index,
                target.direction,
                target.amount,
                tuple(choice.items()),
                balance,
                mode,
            )
            shape = None
            if key in self._touches:
                touches = self._touches[key]
            else:
                shape = self._shape(target, choice, balance, mode)
                touches = self._touches[key] = (
                    None
                    if shape is None
                    else tuple((of, array("i", cells)) for of, cells in shape[1].items())
                )
            if touches is None:
                return None
            for of, moved in touches:
                status = self.status[of]
                if any(status[cell] == PUBLISHED for cell in moved):
                    return None
            if shape is None:
                shape = self._shape(target, choice, balance, mode)
                assert shape is not None  # it was placed before: counts never change
            return _Candidate(cost=0.0, changes=shape[0], touched=shape[1])
        shape = self._shape(target, choice, balance, mode)
        if shape is None:
            return None
        changes, touched_by = shape
        return _Candidate(cost=self.cost_of(touched_by), changes=changes, touched=touched_by)

    def cost_of(self, touched: Mapping[str, Iterable[int]]) -> float:
        """What suppressing the cells a witness moves costs: those still published, priced."""
        cost = 0.0
        for of, cells in touched.items():
            status = self.status[of]
            costs = self.costs[of]
            for cell in cells:
                if status[cell] == PUBLISHED:
                    cost += costs[cell]
        return cost

    def _shape(
        self, target: _Target, choice: Mapping[int, int], balance: int | None, mode: int
    ) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]] | None:
        """One shape's microcell changes and every published-set cell they move (None when
        the shape cannot be placed)."""
        measure = target.measure
        own = self._changes(target, choice, balance, mode, measure, target.amount)
        if own is None or not self._feasible(measure, own):
            return None
        changes: dict[str, dict[int, float]] = {measure: own}
        drained = (
            set(self._down_closure(measure))
            if target.direction is Direction.DOWN
            and target.amount >= self.values[measure][target.index] - _EPS
            else set()
        )
        settled = False
        while not settled:
            settled = True
            for lower, upper in self.cube.relations:
                if lower not in changes and upper not in changes:
                    continue
                if self._respects(lower, upper, changes):
                    continue
                if lower in changes and upper in changes:
                    return None
                moves: dict[int, float] | None
                if upper not in changes:
                    # A bounding count rises with the one it bounds.
                    follower, moves = upper, dict(changes[lower])
                elif lower in drained and self.values[lower][target.index]:
                    # A bounded count drains with the target, on the same hypercube.
                    follower = lower
                    amount = float(self.values[lower][target.index])
                    moves = self._changes(target, choice, balance, mode, lower, amount)
                else:
                    follower, moves = lower, self._clip(lower, upper, changes)
                if moves is None or not self._feasible(follower, moves):
                    return None
                changes[follower] = moves
                settled = False
        return changes, self.touched(changes)

    def touched(self, changes: Mapping[str, Mapping[int, float]]) -> dict[str, dict[int, float]]:
        """Every published-set cell that microcell changes move, by measure, and by how much."""
        touched_by: dict[str, dict[int, float]] = {}
        for of, moves in changes.items():
            lift: dict[int, float] = {}
            for leaf, change in moves.items():
                for cell in self._ancestors(leaf):
                    lift[cell] = lift.get(cell, 0.0) + change
            touched_by[of] = {cell: c for cell, c in lift.items() if abs(c) > _EPS}
        return touched_by

    def _changes(
        self,
        target: _Target,
        choice: Mapping[int, int],
        balance: int | None,
        mode: int,
        measure: str,
        amount: float,
    ) -> dict[int, float] | None:
        """One measure's microcell changes for a hypercube and a way of placing its corners."""
        stride0 = self.cube.strides[0]
        month = target.positions[0]
        sense = -1.0 if target.direction is Direction.DOWN else 1.0
        corners = self._corners(target, choice)
        head = corners[0][0]
        level = target.index - target.base  # the target's offset on its total dimensions
        # A second slice sits in another month (the swapped month, or the month balancing a
        # quarter). It mirrors the first on every total, but may use microcells of its own.
        if balance is not None:
            first, second = corners, [(c, -s) for c, s in corners]

            def across(point: int) -> int:
                return point % stride0 + balance * stride0

        elif 0 in target.free and choice[0] != _UP:
            first = [(c, s) for c, s in corners if c // stride0 == month]
            second = [(c, s) for c, s in corners if c // stride0 != month]

            def across(point: int) -> int:
                return point

        else:
            first, second = corners, []

            def across(point: int) -> int:
                return point

        other_level = across(level)

        def losing(members: Sequence[tuple[int, int]]) -> list[int]:
            return [c for c, s in members if sense * s < 0]

        def gaining(members: Sequence[tuple[int, int]]) -> list[int]:
            return [c for c, s in members if sense * s > 0]

        own = self._own_placement(target, measure, amount)
        if mode == _TRANSFER:
            # The target and the corner that differs on every swapped dimension, nothing else.
            source = corners[-1][0]
            changes: dict[int, float] = {}
            if target.direction is Direction.UP:
                placed = self._fill(
                    measure, self._sources(measure, level, [source]), [source], [], amount
                )
                if placed is None:
                    return None
                moves = [(own, head, 1.0), (placed, source, -1.0)]
            else:
                moves = [(own, head, -1.0), (own, source, 1.0)]
            for placement, corner, sign in moves:
                for point, mass in placement.items():
                    leaf = point + corner
                    changes[leaf] = changes.get(leaf, 0.0) + sign * mass
            return {leaf: c for leaf, c in changes.items() if abs(c) > _EPS}
        if target.direction is Direction.UP and mode != _FREE:
            # Place the target's slice (every slice, in parallel mode) where partners can give.
            first_losing, second_losing = losing(first), losing(second)
            shifted = None
            if mode == _PARALLEL and second:
                shifted = (second_losing, gaining(second), across)
            if first_losing:
                pool: Iterable[int] = self._sources(measure, level, first_losing)
            elif shifted is not None and second_losing:
                corner = second_losing[0]
                pool = [
                    point
                    for leaf in self._nonzero(measure, other_level + corner)
                    for point in self._preimages(target, leaf - corner, balance)
                ]
            else:
                pool = target.points
            placed = self._fill(measure, pool, first_losing, gaining(first), amount, shifted)
            if placed is None:
                return None
            own = placed
        changes = {}

        def put(placement: Mapping[int, float], corner: int, sign: int, shift: bool) -> None:
            for point, mass in placement.items():
                leaf = (across(point) if shift else point) + corner
                changes[leaf] = changes.get(leaf, 0.0) + sense * sign * mass

        for corner, sign in first:
            if mode == _FREE and corner != head and sense * sign < 0:
                placed = self._fill(
                    measure, self._sources(measure, level, [corner]), [corner], [], amount
                )
                if placed is None:
                    return None
                put(placed, corner, sign, shift=False)
            else:
                put(own, corner, sign, shift=False)
        if not second:
            return {leaf: c for leaf, c in changes.items() if abs(c) > _EPS}
        if mode == _PARALLEL:
            for corner, sign in second:
                put(own, corner, sign, shift=True)
        elif mode == _SLICED:
            second_losing = losing(second)
            pool = (
                self._sources(measure, other_level, second_losing)
                if second_losing
                else [across(p) for p in own]
            )
            placed = self._fill(measure, pool, second_losing, [], amount)
            if placed is None:
                return None
            for corner, sign in second:
                put(placed, corner, sign, shift=False)
        else:
            for corner, sign in second:
                if sense * sign > 0:
                    put(own, corner, sign, shift=True)
                    continue
                pool = self._sources(measure, other_level, [corner])
                placed = self._fill(measure, pool, [corner], [], amount)
                if placed is None:
                    return None
                put(placed, corner, sign, shift=False)
        return {leaf: c for leaf, c in changes.items() if abs(c) > _EPS}

    def _corners(self, target: _Target, choice: Mapping[int, int]) -> list[tuple[int, int]]:
        """Microcell corners of the hypercube on the target's category dimensions."""
        cube = self.cube
        corners: list[tuple[int, int]] = [(0, 1)]
        for j in target.free:
            stride = cube.strides[j]
            own = target.positions[j] * stride
            if choice[j] == _UP:
                corners = [(a + own, s) for a, s in corners]
            else:
                other = choice[j] * stride
                corners = [(a + own, s) for a, s in corners] + [(a + other, -s) for a, s in corners]
        return corners

    def _own_placement(self, target: _Target, measure: str, amount: float) -> dict[int, float]:
        """Where the target's own change sits: all its microcells when drained, else one."""
        key = (measure, amount)
        cached = target.placements.get(key)
        if cached is not None:
            return cached
        values = self.values[measure]
        base = target.base
        placed: dict[int, float]
        if target.direction is Direction.DOWN and amount >= values[target.index] - _EPS:
            nonzero = self._nonzero(measure, target.index)
            placed = {leaf - base: float(values[leaf]) for leaf in nonzero}
        elif target.direction is Direction.UP:
            # A microcell whose bounding counts leave room, so that they need not move.
            uppers = self._upper_values[measure]

            def rank(point: int) -> tuple[bool, bool, float, int]:
                cell = point + base
                room = min((up[cell] - values[cell] for up in uppers), default=float("inf"))
                return (room >= amount, values[cell] > 0, room, -point)

            placed = {max(target.points, key=rank): amount}
        else:
            nonzero = self._nonzero(measure, target.index)
            heaviest = max(nonzero, key=lambda leaf: (values[leaf], -leaf))
            placed = {heaviest - base: amount}
        target.placements[key] = placed
        return placed

    def _sources(self, measure: str, level: int, losing: Sequence[int]) -> list[int]:
        """Points where the sparsest losing corner holds a count (the only ones that can give)."""
        corner = min(losing, key=lambda c: len(self._nonzero(measure, level + c)))
        return [leaf - corner for leaf in self._nonzero(measure, level + corner)]

    def _preimages(self, target: _Target, point: int, balance: int | None) -> list[int]:
        """Target points that map onto a point of the second slice."""
        if balance is None:
            return [point] if point in target.point_set else []
        stride0 = self.cube.strides[0]
        rest = point % stride0
        months = self.cube.axes[0].leaves_under[target.positions[0]]
        return [p for p in (rest + m * stride0 for m in months) if p in target.point_set]

    def _fill(
        self,
        measure: str,
        candidates: Iterable[int],
        losing: Sequence[int],
        gaining: Sequence[int],
        amount: float,
        shifted: tuple[Sequence[int], Sequence[int], Callable[[int], int]] | None = None,
    ) -> dict[int, float] | None:
        """Spread `amount` over points whose microcells at `losing` can give it up.

        Room is first counted so that no bounded or bounding measure has to move; only where
        that is not enough are the relations left to the follow-up in `_evaluate`. `shifted`
        adds a second slice: its corners at a mapped point.
        """
        points = sorted(set(candidates))
        related = bool(self._lower_values[measure] or self._upper_values[measure])
        for strict in (True, False) if related else (False,):
            rooms = []
            for point in points:
                room = self._room(measure, point, losing, gaining, strict)
                if shifted is not None and room > _EPS:
                    other_losing, other_gaining, mapping = shifted
                    room = min(
                        room,
                        self._room(measure, mapping(point), other_losing, other_gaining, strict),
                    )
                if room > _EPS:
                    rooms.append((-room, point))
            rooms.sort()
            placed: dict[int, float] = {}
            left = amount
            for negative_room, point in rooms:
                take = min(-negative_room, left)
                placed[point] = take
                left -= take
                if left <= _EPS:
                    return placed
        return None

    def _room(
        self, measure: str, point: int, losing: Sequence[int], gaining: Sequence[int], strict: bool
    ) -> float:
        """How much the microcells point+losing can give and point+gaining can take."""
        values = self.values[measure]
        empty = self.cube.known_empty
        room = float("inf")
        for corner in losing:
            cell = point + corner
            if empty and cell in empty:
                return 0.0
            have = float(values[cell])
            if strict:
                for low in self._lower_values[measure]:
                    have = min(have, values[cell] - low[cell])
            room = min(room, have)
            if room <= _EPS:
                return 0.0
        for corner in gaining:
            cell = point + corner
            if empty and cell in empty:
                return 0.0
            if strict:
                for up in self._upper_values[measure]:
                    room = min(room, up[cell] - values[cell])
        return room

    # -- relations and bookkeeping ----------------------------------------------------------

    def _clip(
        self, lower: str, upper: str, changes: Mapping[str, Mapping[int, float]]
    ) -> dict[int, float]:
        """Lower a bounded count just enough to stay under its bound where the bound falls."""
        low_values, up_values = self.values[lower], self.values[upper]
        moves = dict(changes.get(lower, {}))
        for leaf, change in changes[upper].items():
            bound = up_values[leaf] + change
            current = low_values[leaf] + moves.get(leaf, 0.0)
            if current > bound + _EPS:
                moves[leaf] = moves.get(leaf, 0.0) + bound - current
        return moves

    def _down_closure(self, measure: str) -> list[str]:
        """Every measure bounded by this one, directly or through others."""
        out: list[str] = []
        queue = list(self.lowers[measure])
        while queue:
            lower = queue.pop(0)
            if lower not in out:
                out.append(lower)
                queue.extend(self.lowers[lower])
        return out

    def _feasible(self, measure: str, changes: Mapping[int, float]) -> bool:
        values = self.values[measure]
        empty = self.cube.known_empty
        return all(
            values[leaf] + change >= -_EPS and not (empty and leaf in empty)
            for leaf, change in changes.items()
        )

    def _respects(self, lower: str, upper: str, changes: Mapping[str, Mapping[int, float]]) -> bool:
        low_values, up_values = self.values[lower], self.values[upper]
        low_changes = changes.get(lower, {})
        up_changes = changes.get(upper, {})
        return all(
            low_values[leaf] + low_changes.get(leaf, 0.0)
            <= up_values[leaf] + up_changes.get(leaf, 0.0) + _EPS
            for leaf in {*low_changes, *up_changes}
        )

    def _ancestors(self, leaf: int) -> list[int]:
        """Every published-set cell a microcell counts in."""
        cached = self._ancestor_cache.get(leaf)
        if cached is None:
            cube = self.cube
            lines = [
                [c * stride for c in axis.lineage[p]]
                for axis, p, stride in zip(
                    cube.axes, cube.positions(leaf), cube.strides, strict=True
                )
            ]
            cached = [cell for cell in map(sum, product(*lines)) if not self.hidden[cell]]
            self._ancestor_cache[leaf] = cached
        return cached

    def _nonzero(self, measure: str, cell: int) -> list[int]:
        """Microcells under a cell that hold a count of the measure (counts never change)."""
        key = (measure, cell)
        cached = self._nonzero_cache.get(key)
        if cached is None:
            cube = self.cube
            values = self.values[measure]
            ranges = [
                [leaf * stride for leaf in axis.leaves_under[p]]
                for axis, p, stride in zip(
                    cube.axes, cube.positions(cell), cube.strides, strict=True
                )
            ]
            cached = [leaf for leaf in map(sum, product(*ranges)) if values[leaf]]
            self._nonzero_cache[key] = cached
        return cached

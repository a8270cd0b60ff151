"""Choosing complementary cells by optimisation: a set-covering program solved by HiGHS.

Each target (a primary cell to be moved in one direction) has a few candidate witnesses; each
witness suppresses a set of published cells, each cell at a price (its count plus one). The
program picks witnesses so that every target is covered by at least one of them and the cells
suppressed by the chosen witnesses cost least in total:

    minimise   sum_c price_c y_c + tiny * sum_w x_w
    subject to sum_{w covers t} x_w >= 1          for every target t
               x_w <= y_c                         for every cell c that witness w suppresses
               x, y binary

This is the model of tau-Argus's and sdcTable's optimal method with the attacker's subproblems
replaced by witnesses that are proofs already (every candidate is a valid protection on its
own), which keeps each program small enough to solve to optimality. The solver is HiGHS
through `scipy.optimize.milp`, to a relative gap of 1 %, limited by a node count and by the size
of the module (not by time) so that the same data always give the same choice.

Candidates are priced against everything already suppressed, and the programs are solved one
module at a time (one period and one measure, coarse periods first): the modular method of
sdcTable, with the witnesses of each module fixed before the next is chosen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

# A node count and the program's size, never a clock, bound the solver, so that the result does
# not depend on the machine's load. A module (one period and one measure) with more targets than
# MODULE_TARGETS is left to the greedy choice: on a pilot-sized year the few programs above it
# (up to 62 targets, 310 witnesses x 679 cells) took 1 to 25 s each and gained under 0.2 % of
# the count withheld (bench/suppression.py). A program that does not close its gap within the
# node limit, or whose answer costs more than each target's own cheapest witness, is left to
# the greedy choice too.
NODE_LIMIT = 2_000
MIP_GAP = 0.01
MODULE_TARGETS = 30
_TINY = 1e-3  # of a cell's price: fewer witnesses among choices that suppress the same cells


@dataclass
class SolverReport:
    """What the solver did over all modules of a protection, for the benchmark and the docs."""

    programs: int = 0
    optimal: int = 0  # closed within MIP_GAP
    worst_gap: float = 0.0
    fallbacks: int = 0  # programs answered by the greedy choice instead
    greedy_modules: int = 0  # modules above MODULE_TARGETS, never given to the solver
    largest: tuple[int, int] = (0, 0)  # (candidates, cells) of the largest program
    seconds: float = 0.0


def choose(
    covers: Sequence[Sequence[int]],
    suppresses: Sequence[Sequence[int]],
    prices: Sequence[float],
    report: SolverReport,
) -> list[int] | None:
    """Indices of the candidates to use, or None to leave the module to the greedy choice.

    `covers[t]`: the candidates that cover target t (the first is its own cheapest);
    `suppresses[w]`: the cells candidate w would suppress (indices into `prices`). The choice
    is optimal within MIP_GAP (relative) among the candidates proposed.
    """
    n_w, n_c = len(suppresses), len(prices)
    fallback = sorted({options[0] for options in covers})
    fallback_cost = _cost(fallback, suppresses, prices)
    if n_c == 0 or fallback_cost <= 0:
        return fallback
    rows, cols, data = [], [], []
    for t, options in enumerate(covers):
        for w in options:
            rows.append(t)
            cols.append(w)
            data.append(1.0)
    n_cover = len(covers)
    link = n_cover
    for w, cells in enumerate(suppresses):
        for c in cells:
            rows += [link, link]
            cols += [w, n_w + c]
            data += [1.0, -1.0]
            link += 1
    matrix = coo_matrix((data, (rows, cols)), shape=(link, n_w + n_c)).tocsr()
    lower = np.concatenate([np.ones(n_cover), np.full(link - n_cover, -np.inf)])
    upper = np.concatenate([np.full(n_cover, np.inf), np.zeros(link - n_cover)])
    smallest = min((p for p in prices if p > 0), default=1.0)
    objective = np.concatenate([np.full(n_w, _TINY * smallest), np.asarray(prices, float)])
    started = time.perf_counter()
    result = milp(
        objective,
        constraints=LinearConstraint(matrix, lower, upper),
        integrality=np.ones(n_w + n_c),
        bounds=Bounds(0, 1),
        options={"node_limit": NODE_LIMIT, "mip_rel_gap": MIP_GAP},
    )
    report.seconds += time.perf_counter() - started
    report.programs += 1
    report.largest = max(report.largest, (n_w, n_c))
    if result.x is None or result.status != 0:  # no proof within the gap: not the optimum
        report.fallbacks += 1
        return None
    chosen = [w for w in range(n_w) if result.x[w] > 0.5]
    report.optimal += 1
    report.worst_gap = max(report.worst_gap, float(getattr(result, "mip_gap", 0.0) or 0.0))
    if _cost(chosen, suppresses, prices) > fallback_cost:
        report.fallbacks += 1
        return None
    return chosen


def _cost(
    chosen: Sequence[int], suppresses: Sequence[Sequence[int]], prices: Sequence[float]
) -> float:
    return sum(prices[c] for c in {c for w in chosen for c in suppresses[w]})

"""Which tables the rare findings could be published in: table plans with general witnesses.

The suppression benchmark's generated year, k = 5, protected under three table plans narrower
than today's canonical set, each by the release method (hypercube shapes, 1.2) and with the
general integer witnesses of bench/witnesses.py offered for every target whose cheapest shape
costs anything. Per clinical finding: the share of its count withheld and its worst quarterly
one-way table (the issue's target: at most 5 %), beside what the primary rule alone withholds
there, and what any method must withhold there while the quarter's total is published
(`table_floor`). No target of its own: it informs a decision on what is published
(docs/surveillance.md, section 6). The plans:

* `one-way`: monthly totals, quarterly one-way tables, the yearly total;
* `one-way-years`: the same with yearly one-way tables;
* `corridor`: monthly totals, quarterly and yearly one-way tables and origin x destination
  (what a ministry needs to see its burden by corridor).
"""

from __future__ import annotations

import time

from bench import witnesses
from bench.common import Measurement
from bench.suppression import PER_MONTH, SEED, K, pilot_year, primary_floor, table_floor, withheld
from registry.surveillance.cube import CLINICAL_FINDINGS, Cube, Granularity, build_cube
from registry.surveillance.disclosure import audit, protect
from registry.surveillance.synthetic import population

ONE_WAY = {Granularity.MONTH: 0, Granularity.QUARTER: 1, Granularity.YEAR: 0}
ONE_WAY_YEARS = {Granularity.MONTH: 0, Granularity.QUARTER: 1, Granularity.YEAR: 1}
CORRIDOR = (1, 2)  # the origin and destination axes


class CorridorCube(Cube):
    """A cube whose only two-way tables are origin x destination (quarters and the year)."""

    def publishable(self, index: int) -> bool:
        positions = self.positions(index)
        fixed = tuple(d for d in range(1, len(self.axes)) if positions[d] < self.axes[d].leaf_count)
        if self.period(index).granularity is Granularity.MONTH:
            return not fixed
        return len(fixed) <= 1 or fixed == CORRIDOR


def cubes() -> dict[str, Cube]:
    cells = population(SEED, year=2026, months=12, per_month=PER_MONTH)
    empty = [{"purpose": "pre-departure", "destination": "none"}]
    plans: dict[str, Cube] = {
        "one-way": build_cube(cells, year=2026, known_empty=empty, max_crossed=ONE_WAY),
        "one-way-years": build_cube(cells, year=2026, known_empty=empty, max_crossed=ONE_WAY_YEARS),
    }
    corridor = CorridorCube.__new__(CorridorCube)
    corridor.__dict__.update(build_cube(cells, year=2026, known_empty=empty).__dict__)
    plans["corridor"] = corridor
    return plans


def run() -> Measurement:
    figures: dict[str, object] = {}
    # what no method and no plan that publishes a quarterly one-way table can go below
    for measure, (share, table) in table_floor(pilot_year()).items():
        if measure in CLINICAL_FINDINGS:
            figures[f"floor: {measure}"] = f"{share:.1%}" + (f" ({table})" if table else "")
    witnesses.GeneralSearch.threshold = 0.0  # every target whose cheapest shape costs anything
    for name, cube in cubes().items():
        started = time.process_time()
        shapes = withheld(protect(cube, k=K))
        shapes_cpu = time.process_time() - started
        started = time.process_time()
        protected, search = witnesses.general_release(cube)
        general_cpu = time.process_time() - started
        assert not audit(protected)
        general = withheld(protected)
        floor = primary_floor(cube)
        figures[f"{name}: CPU shapes / with general"] = (
            f"{shapes_cpu:.1f} s / {general_cpu:.1f} s ({search.programs} programs, "
            f"{search.better} cheaper than the shapes)"
        )
        figures[f"{name}: count withheld shapes / with general"] = (
            f"{sum(r['count_withheld'] for r in shapes.values()):,.0f} / "
            f"{sum(r['count_withheld'] for r in general.values()):,.0f}"
        )
        for measure in CLINICAL_FINDINGS:
            figures[f"{name}: {measure}"] = (
                f"worst quarterly one-way {shapes[measure]['worst_quarter_one_way']:.1%} -> "
                f"{general[measure]['worst_quarter_one_way']:.1%} (primary cells alone "
                f"{floor[measure]:.1%}); count {shapes[measure]['count_share']:.1%} -> "
                f"{general[measure]['count_share']:.1%}"
            )
    # the same, with each program moving the target's related measures too (but `examined`)
    witnesses.GeneralSearch.coupled = True
    try:
        started = time.process_time()
        protected, search = witnesses.general_release(cubes()["one-way"])
        coupled_cpu = time.process_time() - started
    finally:
        witnesses.GeneralSearch.coupled = False
    assert not audit(protected)
    coupled = withheld(protected)
    figures["one-way, programs over related measures: CPU"] = (
        f"{coupled_cpu:.1f} s ({search.programs} programs, {search.better} cheaper than the shapes)"
    )
    for measure in CLINICAL_FINDINGS:
        figures[f"one-way, programs over related measures: {measure}"] = (
            f"worst quarterly one-way {coupled[measure]['worst_quarter_one_way']:.1%}; count "
            f"{coupled[measure]['count_share']:.1%}"
        )
    return Measurement(
        name="plans",
        target="none (informs the choice of tables for the rare findings)",
        figures=figures,
        command=".venv/bin/python -m bench plans",
        notes=(
            "Same generated year as the suppression benchmark (seed 1, 20,000 examinations a "
            "month), k = 5. 'a -> b': the release method (hypercube shapes) -> with general "
            "integer witnesses (bench/witnesses.py, node limit "
            f"{witnesses.NODE_LIMIT}) for every target whose cheapest shape costs anything. "
            "Shares are of each measure's count over the plan's own tables. floor: what any "
            "method must withhold of the worst quarterly one-way table while the quarter's "
            "total is published (bench/suppression.py, table_floor), on today's tables."
        ),
    )

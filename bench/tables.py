"""What the canonical table set costs: the same pilot year protected with coarser tables.

The table set (``max_crossed`` of ``build_cube``: how many dimensions a published table may
cross, by period length) is a deployment-wide constant. This measures, on the suppression
benchmark's generated year at k = 5 and with the release method, the count withheld in all and
per clinical finding for today's set and three coarser ones, to show which tables cost the rare
findings most. No target: it informs the choice of tables (docs/surveillance.md, section 6).
"""

from __future__ import annotations

import time

from bench.common import Measurement
from bench.suppression import PER_MONTH, SEED, K, withheld
from registry.surveillance.cube import MAX_CROSSED, Granularity, build_cube
from registry.surveillance.disclosure import protect
from registry.surveillance.synthetic import population

PLANS = {
    "today": dict(MAX_CROSSED),
    "monthly_totals": {Granularity.MONTH: 0, Granularity.QUARTER: 2, Granularity.YEAR: 2},
    "quarters_one_way": {Granularity.MONTH: 1, Granularity.QUARTER: 1, Granularity.YEAR: 2},
    "monthly_totals_quarters_one_way": {
        Granularity.MONTH: 0,
        Granularity.QUARTER: 1,
        Granularity.YEAR: 2,
    },
}
FINDINGS = ("hiv-reactive-screening", "hiv-confirmed", "tb-bact-confirmed", "syphilis-reactive")


def run() -> Measurement:
    cells = population(SEED, year=2026, months=12, per_month=PER_MONTH)
    figures: dict[str, object] = {}
    for name, plan in PLANS.items():
        cube = build_cube(
            cells,
            year=2026,
            known_empty=[{"purpose": "pre-departure", "destination": "none"}],
            max_crossed=plan,
        )
        started = time.process_time()
        shares = withheld(protect(cube, k=K))
        figures[f"{name}:tables"] = "/".join(str(plan[g]) for g in Granularity)
        figures[f"{name}:cpu_s"] = round(time.process_time() - started, 1)
        figures[f"{name}:count_withheld"] = sum(s["count_withheld"] for s in shares.values())
        for finding in FINDINGS:
            figures[f"{name}:{finding}"] = (
                f"{shares[finding]['count_share']:.1%} of the count, worst quarterly one-way "
                f"{shares[finding]['worst_quarter_one_way']:.1%}"
            )
    return Measurement(
        name="tables",
        target="none (informs the choice of canonical tables)",
        figures=figures,
        command=".venv/bin/python -m bench tables",
        notes=(
            "Same generated year as the suppression benchmark (seed 1, 20,000 examinations a "
            "month), k = 5, the release method; tables are month/quarter/year, each the most "
            "dimensions a table of that period may cross. CPU time of protection only."
        ),
    )

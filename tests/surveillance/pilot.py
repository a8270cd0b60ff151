"""A realistic quarter of pilot data, which the disclosure and optimisation tests protect."""

from __future__ import annotations

from registry.surveillance.cube import Cube, build_cube
from tests.surveillance.synthetic import population


def quarter_of_pilot_data() -> Cube:
    """A realistic quarter: every measure, rare findings, restricted to keep the LP small."""
    cells = population(
        7,
        months=3,
        per_month=4_000,
        origins=("TJ", "KG"),
        destinations=("KZ", "RU"),
        purposes=("pre-departure", "return"),
        sexes=("male", "female"),
        ages=("18-29", "30-59"),
    )
    return build_cube(cells, year=2026, closed_months=3)

"""A protected quarter of pilot-sized data, shared by the extract and format tests."""

from __future__ import annotations

import pytest

from registry.surveillance.cube import Cube, build_cube
from registry.surveillance.disclosure import ProtectedCube, protect
from tests.surveillance.synthetic import population


@pytest.fixture(scope="session")
def quarter() -> Cube:
    """Three closed months of 2026 over two corridors' origins and destinations."""
    cells = population(
        11, months=3, per_month=6_000, origins=("TJ", "KG"), destinations=("KZ", "RU")
    )
    return build_cube(cells, year=2026, closed_months=3)


@pytest.fixture(scope="session")
def protected_quarter(quarter: Cube) -> ProtectedCube:
    """The quarter protected at the default k."""
    return protect(quarter, k=5)

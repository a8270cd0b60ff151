"""Cubes and their protected patterns, shared by the tests that only read them.

Protecting a year costs seconds; a pattern (``ProtectedCube``) is frozen and no test changes
a cube's counts, so each is computed once for the run. A test that needs a computation of its
own (determinism, a patched limit) computes it itself.
"""

from __future__ import annotations

import pytest

from registry.surveillance.cube import Cube, build_cube
from registry.surveillance.disclosure import (
    ProtectedCube,
    protect,
    protect_greedy,
    protect_optimal,
)
from registry.surveillance.optimum import SolverReport
from tests.surveillance.pilot import quarter_of_pilot_data
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


@pytest.fixture(scope="session")
def pilot_quarter() -> Cube:
    """A realistic quarter of pilot data (tests/surveillance/pilot.py)."""
    return quarter_of_pilot_data()


@pytest.fixture(scope="session")
def pilot_release(pilot_quarter: Cube) -> tuple[ProtectedCube, SolverReport]:
    """The pilot quarter protected at k=5 as releases are (method 1.2), and what the solver did."""
    report = SolverReport()
    return protect(pilot_quarter, k=5, report=report), report


@pytest.fixture(scope="session")
def pilot_protected(pilot_release: tuple[ProtectedCube, SolverReport]) -> ProtectedCube:
    """The pilot quarter's release pattern at k=5."""
    return pilot_release[0]


@pytest.fixture(scope="session")
def pilot_protected_again() -> ProtectedCube:
    """The same pattern computed again from a cube built again: for determinism."""
    return protect(quarter_of_pilot_data(), k=5)


@pytest.fixture(scope="session")
def pilot_greedy(pilot_quarter: Cube) -> ProtectedCube:
    """The pilot quarter at k=5 by method 1.1, every witness chosen greedily."""
    return protect_greedy(pilot_quarter, k=5)


@pytest.fixture(scope="session")
def pilot_optimal(pilot_quarter: Cube) -> tuple[ProtectedCube, SolverReport]:
    """The pilot quarter at k=5 with every module given to the covering program, and its report."""
    report = SolverReport()
    return protect_optimal(pilot_quarter, k=5, report=report), report

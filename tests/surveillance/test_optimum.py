"""Secondary suppression by optimisation: the covering program and the patterns it yields."""

from __future__ import annotations

import pytest

from registry.surveillance import witness
from registry.surveillance.disclosure import audit, protect, protect_greedy, protect_optimal
from registry.surveillance.optimum import SolverReport, choose
from tests.surveillance.test_disclosure import (
    assert_every_primary_protected,
    everything_published,
    quarter_of_pilot_data,
)


def test_one_witness_covering_two_targets_beats_each_targets_own_cheapest() -> None:
    # t0's cheapest suppresses cell 0 (price 3), t1's cell 1 (price 3); witness 2 covers both
    # with cell 2 (price 4): 4 < 6.
    report = SolverReport()
    chosen = choose([[0, 2], [1, 2]], [[0], [1], [2]], [3.0, 3.0, 4.0], report)
    assert chosen == [2]
    assert report.programs == 1 and report.optimal == 1


def test_a_cell_already_given_up_for_one_target_is_reused_by_another() -> None:
    # t0 must suppress cell 0 (price 10, its only witness). For t1, its own cheapest (cell 1,
    # price 2) loses to witness 2, which suppresses cell 0 too and nothing else.
    report = SolverReport()
    chosen = choose([[0], [1, 2]], [[0], [1], [0]], [10.0, 2.0], report)
    assert sorted(chosen) == [0, 2]


def test_witnesses_that_suppress_nothing_need_no_program() -> None:
    report = SolverReport()
    assert choose([[0], [1]], [[], []], [], report) == [0, 1]
    assert report.programs == 0


def test_the_optimised_pattern_is_proved_and_holds_against_the_attacker() -> None:
    cube = quarter_of_pilot_data()
    protected_cube = protect_optimal(cube, k=5)
    assert audit(protected_cube) == []
    checked = assert_every_primary_protected(
        cube, 5, everything_published(protected_cube), protected_cube
    )
    assert checked > 50


def test_the_release_pattern_is_deterministic_and_gives_up_no_more_than_the_greedy_one() -> None:
    cube = quarter_of_pilot_data()
    report = SolverReport()
    first, second = protect(cube, k=5, report=report), protect(cube, k=5)
    assert first.status == second.status
    assert [w.changes for w in first.witnesses] == [w.changes for w in second.witnesses]
    assert report.programs > 0 and report.worst_gap <= 0.01 + 1e-9
    assert audit(first) == []

    def withheld(protected_cube) -> int:  # type: ignore[no-untyped-def]
        return sum(
            value
            for measure in cube.measures
            for index, value in enumerate(cube.values[measure])
            if cube.publishable(index) and protected_cube.published_value(measure, index) is None
        )

    assert withheld(first) <= withheld(protect_greedy(cube, k=5))
    assert withheld(protect_optimal(cube, k=5)) <= withheld(protect_greedy(cube, k=5))


def test_a_module_above_the_size_limit_is_chosen_greedily_and_still_proved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(witness, "MODULE_TARGETS", 6)
    cube = quarter_of_pilot_data()
    report = SolverReport()
    protected_cube = protect(cube, k=5, report=report)
    everything = protect_optimal(cube, k=5, report=(solved := SolverReport()))
    assert report.greedy_modules > 0 and solved.greedy_modules == 0
    assert report.programs < solved.programs
    assert audit(protected_cube) == [] and audit(everything) == []

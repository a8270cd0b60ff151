"""The attacker's one HiGHS model answers each extent as a fresh ``scipy.optimize.linprog``."""

from __future__ import annotations

import random

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from tests.surveillance.attacker import Program


def _fresh(
    a_eq: csr_matrix, b_eq: np.ndarray, a_ub: csr_matrix, columns: list[int]
) -> tuple[float, float]:
    objective = np.zeros(a_eq.shape[1])
    objective[columns] = 1.0
    ends = []
    for sign in (1.0, -1.0):
        result = linprog(
            sign * objective,
            A_ub=a_ub,
            b_ub=np.zeros(a_ub.shape[0]),
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=(0, None),
            method="highs",
        )
        ends.append(float("inf") if result.status == 3 else sign * result.fun)
    return ends[0], ends[1]


def test_the_kept_model_gives_the_extents_a_fresh_program_gives() -> None:
    chance = random.Random(7)
    size = 60
    table = np.array([chance.randint(0, 6) for _ in range(size)], dtype=float)
    # published sums over random groups of microcells; one microcell (59) is in no sum
    groups = [chance.sample(range(size - 1), chance.randint(2, 12)) for _ in range(40)]
    a_eq = csr_matrix(
        np.array([[1.0 if c in group else 0.0 for c in range(size)] for group in groups])
    )
    b_eq = a_eq @ table
    # relations: x[low] <= x[high] wherever the table allows it
    pairs = [(low, low + 1) for low in range(0, size - 1, 3) if table[low] <= table[low + 1]]
    a_ub = csr_matrix(
        np.array(
            [
                [1.0 if c == low else -1.0 if c == high else 0.0 for c in range(size)]
                for low, high in pairs
            ]
        )
    )
    program = Program(a_eq, b_eq, a_ub)
    asked = [chance.sample(range(size), chance.randint(1, 8)) for _ in range(40)]
    asked += [asked[3], [size - 1], [size - 1, 0], asked[0]]  # again, and unbounded above
    answers = [program.extent(columns) for columns in asked]
    expected = [_fresh(a_eq, b_eq, a_ub, columns) for columns in asked]
    wrong = [
        (c, a, e) for c, a, e in zip(asked, answers, expected, strict=True) if not np.allclose(a, e)
    ]
    assert wrong == []
    assert answers[-3][1] == float("inf") and answers[-3][0] == 0.0
    assert any(low < high < float("inf") for low, high in answers)  # not all pinned or unbounded
    assert program.extent([]) == (0.0, 0.0)

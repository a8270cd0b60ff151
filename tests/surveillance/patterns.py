"""Patterns remembered across the tests of a module whose every world holds the same counts.

A pattern is a function of its input (tests/surveillance/test_disclosure.py proves protection
deterministic), so the service can be handed a `protect` that computes each pattern once per
module and returns it with the caller's cube; the service still stores and serves it in each
test. A test that forbids computing replaces it as it replaced the real one.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from registry.surveillance import service
from registry.surveillance.cube import Cube
from registry.surveillance.disclosure import ProtectedCube


def _remembered(
    real: Callable[..., ProtectedCube], patterns: dict[bytes, ProtectedCube]
) -> Callable[..., ProtectedCube]:
    def protect(cube: Cube, **options: Any) -> ProtectedCube:
        key = pickle.dumps((real.__name__, cube.__dict__, sorted(options.items())))
        if key not in patterns:
            patterns[key] = real(cube, **options)
        return dataclasses.replace(patterns[key], cube=cube)

    return protect


def remember_patterns(
    monkeypatch: pytest.MonkeyPatch, patterns: dict[bytes, ProtectedCube]
) -> None:
    """The service's methods 1.2 and 1.1 compute each pattern once into `patterns`."""
    for name in ("protect", "protect_greedy"):
        monkeypatch.setattr(service, name, _remembered(getattr(service, name), patterns))

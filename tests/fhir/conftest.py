"""Fixtures for the FHIR examination-record tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir.fhir_support import load_example


@pytest.fixture
def pre_departure() -> dict[str, Any]:
    return load_example("valid-pre-departure.json")

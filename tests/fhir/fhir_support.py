"""Paths and loaders shared by the FHIR examination-record tests."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

PROFILES_DIR = Path(__file__).resolve().parents[2] / "fhir_profiles"
EXAMPLES_DIR = PROFILES_DIR / "examples"
INVALID_DIR = EXAMPLES_DIR / "invalid"
# A day after every date in the examples; tests pin the clock rather than depend on it.
EXAMPLE_TODAY = datetime.date(2025, 6, 1)


def load_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))

"""The Measure definitions in fhir_profiles/measures are valid R4 and match the extract codes."""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.measure import Measure

from registry.surveillance.cube import MEASURES
from registry.surveillance.formats import DIMENSION_CODES, MEASURE_BASE

MEASURES_DIR = Path(__file__).resolve().parents[2] / "fhir_profiles" / "measures"


def test_one_valid_measure_per_surveillance_count() -> None:
    files = sorted(MEASURES_DIR.glob("Measure-*.json"))
    assert len(files) == len(MEASURES)
    urls = set()
    for path in files:
        measure = Measure.model_validate(json.loads(path.read_text()))
        assert measure.url == f"{MEASURE_BASE}/{measure.id}"
        assert measure.scoring.coding[0].code == "cohort"
        assert path.name == f"Measure-{measure.id}.json"
        strata = {s.code.coding[0].code for s in measure.group[0].stratifier}
        assert strata == set(DIMENSION_CODES.values())
        urls.add(measure.url)
    # the Measure id is the measure code of every extract, as it is
    assert urls == {f"{MEASURE_BASE}/{m}" for m in MEASURES}


def test_the_surveillance_code_system_defines_every_code_the_reports_use() -> None:
    system = CodeSystem.model_validate(
        json.loads((MEASURES_DIR / "CodeSystem-surveillance.json").read_text())
    )
    codes = set()
    stack = list(system.concept)
    while stack:
        concept = stack.pop()
        codes.add(concept.code)
        stack.extend(concept.concept or [])
    assert set(DIMENSION_CODES.values()) <= codes
    assert set(MEASURES) <= codes
    assert {"age-lt18", "age-18-29", "age-30-59", "age-60plus", "no-destination"} <= codes

"""Render a protected extract as CSV, JSON, FHIR MeasureReport, DHIS2 dataValueSets and ADX.

Every format shows a withheld count only as "suppressed": never why. Saying that a cell was
suppressed because it is small would tell the attacker it is not zero, which is exactly what
the protection hides. FHIR output is plain dicts (the R4B model classes live in
``registry.fhir.models``); DHIS2 and ADX use codes, to be imported with ``idScheme=CODE``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any
from xml.etree import ElementTree

from registry.surveillance import dhis2
from registry.surveillance.cube import (
    AGE_BANDS,
    ALL,
    FLAT_DIMENSIONS,
    NO_DESTINATION,
    Period,
)
from registry.surveillance.extract import ProtectedCell, ProtectedTable

FHIR_BASE = "https://exam-registry.org/fhir"
MEASURE_BASE = f"{FHIR_BASE}/Measure"
SURVEILLANCE_SYSTEM = f"{FHIR_BASE}/CodeSystem/surveillance"
PURPOSE_SYSTEM = f"{FHIR_BASE}/CodeSystem/exam-purpose"
COUNTRY_SYSTEM = "urn:iso:std:iso:3166"
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ADX_NAMESPACE = "urn:ihe:qrph:adx:2015"

PUBLISHED = "published"
SUPPRESSED = "suppressed"

DIMENSION_CODES = {
    "origin": "origin",
    "destination": "destination",
    "purpose": "purpose",
    "sex": "sex",
    "age_band": "age-band",
}
AGE_BAND_CODES = dict(
    zip(AGE_BANDS, ("age-lt18", "age-18-29", "age-30-59", "age-60plus"), strict=True)
)


def csv_text(table: ProtectedTable) -> str:
    """One row per count: period, the extract's dimensions, measure, value (empty if withheld)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*table.dimensions, "measure", "value", "flag"])
    for cell in table.cells:
        writer.writerow(
            [
                cell.period.label,
                *(cell.codes[d] for d in table.dimensions[1:]),
                cell.measure,
                "" if cell.value is None else cell.value,
                _public_flag(cell),
            ]
        )
    return out.getvalue()


def json_document(table: ProtectedTable, *, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The extract as a JSON-ready dict, with its method statement and request.

    `warnings` (deprecated input the request used) are listed under `warnings` when there are any.
    """
    request = table.request
    document = {
        "method": dict(table.method),
        "request": {
            "granularity": str(request.granularity),
            "first": request.first,
            "last": request.last,
            "grouping": list(request.grouping),
            "where": dict(request.where),
            "measures": list(request.measures),
            "k": request.k,
            "rounding": request.rounding,
        },
        "dimensions": list(table.dimensions),
        "total": ALL,
        "cells": [
            {
                "period": cell.period.label,
                **dict(cell.codes),
                "measure": cell.measure,
                "value": cell.value,
                "flag": _public_flag(cell),
            }
            for cell in table.cells
        ],
    }
    if warnings:
        document["warnings"] = list(warnings)
    return document


def measure_report_bundle(
    table: ProtectedTable, *, generated: datetime | None = None
) -> dict[str, Any]:
    """A FHIR R4 collection Bundle with one summary MeasureReport per measure and period."""
    when = _timestamp(generated)
    reports = []
    for measure in table.measures:
        for period in table.request.periods:
            cells = [c for c in table.cells if c.measure == measure and c.period == period]
            reports.append(_measure_report(table, measure, period, cells, when))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": when,
        "entry": [{"resource": report} for report in reports],
    }


def _measure_report(
    table: ProtectedTable,
    measure: str,
    period: Period,
    cells: list[ProtectedCell],
    when: str,
) -> dict[str, Any]:
    grouping = table.request.grouping
    where = table.request.where
    total = next(c for c in cells if all(c.codes[d] == ALL for d in grouping))
    group: dict[str, Any] = {"population": [_population(total)]}
    if where:
        # The scope (the ministry's own country as origin or destination) bounds every count.
        group["code"] = {
            "coding": [_value_coding(d, code) for d, code in where.items()],
            "text": ", ".join(f"{d} {code}" for d, code in where.items()),
        }
    stratifiers = []
    for size in range(1, len(grouping) + 1):
        for dims in combinations(grouping, size):
            strata = []
            for cell in cells:
                if any((cell.codes[d] == ALL) != (d not in dims) for d in grouping):
                    continue
                stratum: dict[str, Any] = {"population": [_population(cell)]}
                if len(dims) == 1:
                    stratum["value"] = _value_concept(dims[0], cell.codes[dims[0]])
                else:
                    stratum["component"] = [
                        {"code": _dimension_concept(d), "value": _value_concept(d, cell.codes[d])}
                        for d in dims
                    ]
                strata.append(stratum)
            stratifiers.append({"code": [_dimension_concept(d) for d in dims], "stratum": strata})
    if stratifiers:
        group["stratifier"] = stratifiers
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": f"{MEASURE_BASE}/{measure}",
        "date": when,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "group": [group],
    }


def _population(cell: ProtectedCell) -> dict[str, Any]:
    population: dict[str, Any] = {
        "code": {"coding": [{"system": POPULATION_SYSTEM, "code": "initial-population"}]}
    }
    if cell.value is None:
        # MeasureReport has no "withheld" count: the count element carries a data-absent-reason
        # extension, "masked" (withheld for privacy), and no value.
        population["_count"] = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}
    else:
        population["count"] = cell.value
    return population


def _dimension_concept(dimension: str) -> dict[str, Any]:
    return {
        "coding": [{"system": SURVEILLANCE_SYSTEM, "code": DIMENSION_CODES[dimension]}],
        "text": dimension,
    }


def _value_coding(dimension: str, code: str) -> dict[str, str]:
    if dimension in ("origin", "destination") and code != NO_DESTINATION:
        return {"system": COUNTRY_SYSTEM, "code": code}
    if dimension == "destination":
        return {"system": SURVEILLANCE_SYSTEM, "code": "no-destination"}
    if dimension == "purpose":
        return {"system": PURPOSE_SYSTEM, "code": code}
    if dimension == "sex":
        return {"system": GENDER_SYSTEM, "code": code}
    return {"system": SURVEILLANCE_SYSTEM, "code": AGE_BAND_CODES[code]}


def _value_concept(dimension: str, code: str) -> dict[str, Any]:
    return {"coding": [_value_coding(dimension, code)], "text": code}


@dataclass(frozen=True)
class Dhis2Target:
    """Where values land in DHIS2: the ministry's organisation unit and the data set prefix."""

    org_unit: str
    data_set_prefix: str = dhis2.DATA_SET_PREFIX
    attribute_option_combo: str = dhis2.DEFAULT_COMBO_CODE

    def data_set(self, table: ProtectedTable) -> str:
        """The data set of the table's period type (MIGEXAM_QUARTERLY, ...)."""
        return dhis2.data_set_code(table.request.granularity, self.data_set_prefix)


def dhis2_data_value_set(table: ProtectedTable, target: Dhis2Target) -> dict[str, Any]:
    """DHIS2 dataValueSets JSON; withheld counts are left out (DHIS2 has no withheld value)."""
    values = []
    for cell in table.cells:
        if cell.value is None:
            continue
        broken_down = _broken_down(table, cell)
        values.append(
            {
                "dataElement": dhis2.data_element_code(cell.measure, broken_down),
                "period": cell.period.dhis2,
                "orgUnit": target.org_unit,
                "categoryOptionCombo": dhis2.option_combo_code(cell.codes, broken_down),
                "attributeOptionCombo": target.attribute_option_combo,
                "value": str(cell.value),
            }
        )
    return {"dataSet": target.data_set(table), "orgUnit": target.org_unit, "dataValues": values}


def adx_document(
    table: ProtectedTable, target: Dhis2Target, *, exported: datetime | None = None
) -> str:
    """ADX XML: one group per period, disaggregations as category attributes; withheld omitted."""
    ElementTree.register_namespace("", ADX_NAMESPACE)
    root = ElementTree.Element(f"{{{ADX_NAMESPACE}}}adx", {"exported": _timestamp(exported)})
    for period in table.request.periods:
        group = ElementTree.SubElement(
            root,
            f"{{{ADX_NAMESPACE}}}group",
            {
                "orgUnit": target.org_unit,
                "period": period.iso_interval,
                "dataSet": target.data_set(table),
            },
        )
        for cell in table.cells:
            if cell.period != period or cell.value is None:
                continue
            broken_down = _broken_down(table, cell)
            attributes = {"dataElement": dhis2.data_element_code(cell.measure, broken_down)}
            for dimension in broken_down:  # ADX: the category code names the attribute
                attributes[dimension] = dhis2.option_code(dimension, cell.codes[dimension])
            attributes["value"] = str(cell.value)
            ElementTree.SubElement(group, f"{{{ADX_NAMESPACE}}}dataValue", attributes)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def _broken_down(table: ProtectedTable, cell: ProtectedCell) -> tuple[str, ...]:
    """Dimensions at a category in this cell (scope included), in canonical order."""
    return tuple(d for d in FLAT_DIMENSIONS if d in cell.codes and cell.codes[d] != ALL)


def _public_flag(cell: ProtectedCell) -> str:
    return SUPPRESSED if cell.suppressed else PUBLISHED


def _timestamp(moment: datetime | None) -> str:
    when = moment if moment is not None else datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

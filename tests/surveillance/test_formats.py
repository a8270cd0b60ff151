"""Every output format parses as its consumers expect, and none shows why a count is withheld."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport

from registry.surveillance.cube import FLAT_DIMENSIONS, Granularity
from registry.surveillance.dhis2 import data_element_code
from registry.surveillance.disclosure import ProtectedCube
from registry.surveillance.extract import ExtractRequest, ProtectedTable, extract
from registry.surveillance.formats import (
    ADX_NAMESPACE,
    DATA_ABSENT_REASON,
    Dhis2Target,
    adx_document,
    csv_text,
    dhis2_data_value_set,
    json_document,
    measure_report_bundle,
)

GENERATED = datetime(2026, 4, 2, 6, 30, tzinfo=UTC)
ADX = f"{{{ADX_NAMESPACE}}}"


@pytest.fixture(scope="module")
def table(protected_quarter: ProtectedCube) -> ProtectedTable:
    request = ExtractRequest(
        Granularity.MONTH,
        "2026-01",
        "2026-03",
        grouping=("sex",),
        measures=("examined", "hiv-confirmed", "tb-rif-resistant"),
    )
    return extract({2026: protected_quarter}, request)


@pytest.fixture(scope="module")
def corridors(protected_quarter: ProtectedCube) -> ProtectedTable:
    request = ExtractRequest(
        Granularity.QUARTER,
        "2026-Q1",
        "2026-Q1",
        grouping=("origin", "destination"),
        measures=("examined", "hiv-confirmed"),
        rounding=5,
    )
    return extract({2026: protected_quarter}, request)


def test_csv_has_a_header_and_empty_values_for_withheld_counts(table: ProtectedTable) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_text(table))))
    assert list(rows[0]) == ["period", "sex", "measure", "value", "flag"]
    assert len(rows) == len(table.cells)
    assert {r["flag"] for r in rows} == {"published", "suppressed"}
    for row, cell in zip(rows, table.cells, strict=True):
        assert row["period"] == cell.period.label
        assert (row["value"] == "") == (row["flag"] == "suppressed")
        if row["value"]:
            assert int(row["value"]) == cell.value


def test_json_carries_the_method_and_the_request(corridors: ProtectedTable) -> None:
    document = json.loads(json.dumps(json_document(corridors)))
    assert document["method"]["k"] == 5
    assert document["method"]["rounding"] == 5
    assert document["request"]["grouping"] == ["origin", "destination"]
    assert document["dimensions"] == ["period", "origin", "destination"]
    flags = {c["flag"] for c in document["cells"]}
    assert flags <= {"published", "suppressed"}
    assert all((c["value"] is None) == (c["flag"] == "suppressed") for c in document["cells"])


def test_measure_reports_parse_as_fhir_r4_with_withheld_counts_masked(
    corridors: ProtectedTable,
) -> None:
    bundle = measure_report_bundle(corridors, generated=GENERATED)
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 2  # one report per measure and period
    masked = published = 0
    for entry in bundle["entry"]:
        report = MeasureReport.model_validate(entry["resource"])
        assert report.type == "summary"
        assert report.measure.startswith("https://exam-registry.org/fhir/Measure/")
        assert str(report.period.start) == "2026-01-01"
        group = entry["resource"]["group"][0]
        codes = [[c["coding"][0]["code"] for c in s["code"]] for s in group["stratifier"]]
        assert codes == [["origin"], ["destination"], ["origin", "destination"]]
        for stratifier in group["stratifier"]:
            for stratum in stratifier["stratum"]:
                population = stratum["population"][0]
                if "count" in population:
                    published += 1
                    assert population["count"] % 5 == 0
                else:
                    masked += 1
                    extension = population["_count"]["extension"][0]
                    assert extension == {"url": DATA_ABSENT_REASON, "valueCode": "masked"}
    assert published and masked


def test_dhis2_data_values_have_the_required_keys_and_omit_withheld_counts(
    table: ProtectedTable,
) -> None:
    document = dhis2_data_value_set(table, Dhis2Target(org_unit="OU_TJ"))
    assert document["dataSet"] == "MIGEXAM_MONTHLY"
    values = document["dataValues"]
    assert len(values) == sum(1 for c in table.cells if c.value is not None)
    required = {
        "dataElement",
        "period",
        "orgUnit",
        "categoryOptionCombo",
        "attributeOptionCombo",
        "value",
    }
    for value in values:
        assert set(value) == required
        assert re.fullmatch(r"2026(0[1-3])", value["period"])
        assert value["value"].isdigit()
    by_sex = [v for v in values if v["dataElement"].endswith(".sex")]
    assert {v["categoryOptionCombo"] for v in by_sex} <= {
        "sex.male",
        "sex.female",
        "sex.other",
        "sex.unknown",
    }
    assert {v["dataElement"] for v in by_sex} <= {
        "examined.sex",
        "hiv-confirmed.sex",
        "tb-rif-resistant.sex",
    }
    totals = [v for v in values if "." not in v["dataElement"]]
    assert {v["dataElement"] for v in totals} <= {"examined", "hiv-confirmed", "tb-rif-resistant"}
    assert {v["categoryOptionCombo"] for v in totals} == {"default"}


def test_adx_groups_by_period_with_disaggregations_as_attributes(
    corridors: ProtectedTable,
) -> None:
    root = ElementTree.fromstring(
        adx_document(corridors, Dhis2Target(org_unit="OU_TJ"), exported=GENERATED)
    )
    assert root.tag == f"{ADX}adx"
    assert root.attrib["exported"] == "2026-04-02T06:30:00Z"
    groups = root.findall(f"{ADX}group")
    assert len(groups) == 1
    group = groups[0]
    assert group.attrib == {
        "orgUnit": "OU_TJ",
        "period": "2026-01-01/P3M",
        "dataSet": "MIGEXAM_QUARTERLY",
    }
    values = group.findall(f"{ADX}dataValue")
    assert len(values) == sum(1 for c in corridors.cells if c.value is not None)
    for value in values:
        attributes = value.attrib
        assert set(attributes) - {"dataElement", "value"} <= set(FLAT_DIMENSIONS)
        # The data element names exactly the categories it is broken down by.
        dims = tuple(d for d in FLAT_DIMENSIONS if d in attributes)
        measure = "hiv-confirmed" if "hiv" in attributes["dataElement"] else "examined"
        assert attributes["dataElement"] == data_element_code(measure, dims)
        for dimension in dims:
            assert attributes[dimension].startswith(f"{dimension}.")
        assert int(attributes["value"]) % 5 == 0
        assert list(value) == []  # no annotations or nested elements


def test_data_element_codes_are_the_measure_code_and_the_breakdown() -> None:
    assert data_element_code("hiv-confirmed", ()) == "hiv-confirmed"
    assert (
        data_element_code("hiv-confirmed", ("origin", "destination"))
        == "hiv-confirmed.origin.destination"
    )
    with pytest.raises(ValueError, match="unknown measure"):
        data_element_code("hiv_confirmed", ())


SCHEMAS = Path(__file__).resolve().parents[2] / "fhir_profiles" / "surveillance"


def test_dhis2_data_value_sets_validate_against_the_import_schema(
    table: ProtectedTable, corridors: ProtectedTable
) -> None:
    import jsonschema

    schema = json.loads((SCHEMAS / "dhis2-data-value-set.schema.json").read_text())
    for released in (table, corridors):
        jsonschema.validate(dhis2_data_value_set(released, Dhis2Target(org_unit="OU_TJ")), schema)
    broken = dhis2_data_value_set(table, Dhis2Target(org_unit="OU_TJ"))
    broken["dataValues"][0]["value"] = 7  # DHIS2 reads values as strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_adx_documents_validate_against_the_adx_schema(
    table: ProtectedTable, corridors: ProtectedTable
) -> None:
    import xmlschema

    schema = xmlschema.XMLSchema(str(SCHEMAS / "adx.xsd"))
    for released in (table, corridors):
        schema.validate(adx_document(released, Dhis2Target(org_unit="OU_TJ"), exported=GENERATED))
    document = adx_document(table, Dhis2Target(org_unit="OU_TJ"), exported=GENERATED)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(document.replace("/P1M", "/one-month", 1))

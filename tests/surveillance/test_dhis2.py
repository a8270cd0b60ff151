"""DHIS2 metadata: valid by DHIS2's structural rules, stable ids, and exactly what the data uses."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest

from registry.surveillance import dhis2
from registry.surveillance.cube import FLAT_DIMENSIONS, MEASURES, Granularity
from registry.surveillance.disclosure import ProtectedCube
from registry.surveillance.extract import ExtractRequest, ProtectedTable, extract
from registry.surveillance.formats import (
    ADX_NAMESPACE,
    Dhis2Target,
    adx_document,
    dhis2_data_value_set,
)

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "fhir_profiles"
        / "surveillance"
        / "dhis2-metadata.schema.json"
    ).read_text()
)
UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
DEFAULTS = {dhis2.DEFAULT_CATEGORY_COMBO, dhis2.DEFAULT_CATEGORY_OPTION_COMBO}
KINDS = {
    "categoryOptions": "categoryOption",
    "categories": "category",
    "categoryCombos": "categoryCombo",
    "categoryOptionCombos": "categoryOptionCombo",
    "dataElements": "dataElement",
    "dataSets": "dataSet",
}


@pytest.fixture(scope="module")
def document(protected_quarter: ProtectedCube) -> dict[str, Any]:
    cube = protected_quarter.cube
    leaves = {
        d: cube.axes[1 + i].codes[: cube.axes[1 + i].leaf_count]
        for i, d in enumerate(FLAT_DIMENSIONS)
    }
    return dhis2.metadata(
        dhis2.MetadataRequest(
            origins=leaves["origin"], destinations=leaves["destination"], org_unit_id="Xb4Tq0uP9aZ"
        )
    )


def _tables(protected: ProtectedCube) -> list[ProtectedTable]:
    """Extracts of every period length, grouping and scope the canonical tables allow."""
    requests = [
        ExtractRequest(Granularity.MONTH, "2026-01", "2026-03", grouping=("sex",)),
        ExtractRequest(Granularity.MONTH, "2026-01", "2026-03", where={"origin": "TJ"}),
        ExtractRequest(
            Granularity.QUARTER, "2026-Q1", "2026-Q1", grouping=("origin", "destination")
        ),
        ExtractRequest(Granularity.QUARTER, "2026-Q1", "2026-Q1", grouping=("sex", "age_band")),
        ExtractRequest(
            Granularity.QUARTER,
            "2026-Q1",
            "2026-Q1",
            grouping=("purpose",),
            where={"destination": "KZ"},
        ),
    ]
    return [extract({2026: protected}, r) for r in requests]


def test_uids_are_dhis2_uids_derived_from_the_code() -> None:
    first = dhis2.uid("dataElement", "hiv-confirmed")
    assert UID.match(first)
    assert dhis2.uid("dataElement", "hiv-confirmed") == first  # the same on every run
    assert dhis2.uid("dataElement", "hiv-confirmed.sex") != first
    assert dhis2.uid("categoryCombo", "hiv-confirmed") != first  # kinds never share an id
    many = {dhis2.uid("categoryOption", f"origin.{n}") for n in range(5000)}
    assert len(many) == 5000 and all(UID.match(u) for u in many)


def test_the_metadata_validates_against_dhis2s_structural_rules(document: dict[str, Any]) -> None:
    jsonschema.validate(document, SCHEMA)
    broken = json.loads(json.dumps(document))
    broken["dataElements"][0]["id"] = "1" + broken["dataElements"][0]["id"][1:]  # digit first
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(broken, SCHEMA)
    broken = json.loads(json.dumps(document))
    broken["dataElements"][0]["code"] = "x" * 51
    with pytest.raises(jsonschema.ValidationError, match="too long"):
        jsonschema.validate(broken, SCHEMA)


def test_ids_codes_and_names_are_unique_and_every_reference_resolves(
    document: dict[str, Any],
) -> None:
    ids: dict[str, str] = {}
    for section, objects in document.items():
        for field in ("code", "name", "shortName"):
            values = Counter(o[field] for o in objects if field in o)
            assert max(values.values(), default=1) == 1, (section, field, values.most_common(2))
        for obj in objects:
            assert obj["id"] == dhis2.uid(KINDS[section], obj["code"])
            assert obj["id"] not in ids
            ids[obj["id"]] = section

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["id"]] if set(value) == {"id"} else []
            return found + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    for section, objects in document.items():
        for obj in objects:
            for ref in refs({k: v for k, v in obj.items() if k != "id"}):
                assert ref in ids or ref in DEFAULTS or ref == "Xb4Tq0uP9aZ", (section, ref)


def test_every_combination_of_options_has_its_option_combo(document: dict[str, Any]) -> None:
    options = {c["id"]: len(c["categoryOptions"]) for c in document["categories"]}
    per_combo = Counter(c["categoryCombo"]["id"] for c in document["categoryOptionCombos"])
    assert len(document["categoryCombos"]) == 15  # 5 one-way and 10 two-way breakdowns
    for combo in document["categoryCombos"]:
        expected = 1
        for category in combo["categories"]:
            expected *= options[category["id"]]
        assert per_combo[combo["id"]] == expected, combo["code"]
    combos = {c["id"]: c for c in document["categoryCombos"]}
    categories = {c["id"]: {o["id"] for o in c["categoryOptions"]} for c in document["categories"]}
    for option_combo in document["categoryOptionCombos"]:
        combo = combos[option_combo["categoryCombo"]["id"]]
        # one option of each of the combination's categories, in order
        assert len(option_combo["categoryOptions"]) == len(combo["categories"])
        for option, category in zip(
            option_combo["categoryOptions"], combo["categories"], strict=True
        ):
            assert option["id"] in categories[category["id"]]


def test_data_sets_hold_each_period_types_tables_and_the_ministrys_org_unit(
    document: dict[str, Any],
) -> None:
    sets = {s["code"]: s for s in document["dataSets"]}
    assert {c: s["periodType"] for c, s in sets.items()} == {
        "MIGEXAM_MONTHLY": "Monthly",
        "MIGEXAM_QUARTERLY": "Quarterly",
        "MIGEXAM_YEARLY": "Yearly",
    }
    # months: totals and one-way tables; quarters and years: up to two-way, for nine measures
    assert len(sets["MIGEXAM_MONTHLY"]["dataSetElements"]) == 9 * 6
    assert len(sets["MIGEXAM_QUARTERLY"]["dataSetElements"]) == 9 * 16
    assert len(document["dataElements"]) == 9 * 16
    assert all(s["organisationUnits"] == [{"id": "Xb4Tq0uP9aZ"}] for s in sets.values())
    for element in document["dataElements"]:
        assert element["zeroIsSignificant"] is True  # or DHIS2 drops published zeros
        assert element["valueType"] == "INTEGER_ZERO_OR_POSITIVE"
        assert element["code"].split(".")[0] in MEASURES


def test_every_data_value_and_adx_value_references_the_metadata(
    document: dict[str, Any], protected_quarter: ProtectedCube
) -> None:
    elements = {e["code"]: e for e in document["dataElements"]}
    option_combos = {c["code"]: c for c in document["categoryOptionCombos"]}
    options = {o["code"] for o in document["categoryOptions"]}
    categories = {c["code"] for c in document["categories"]}
    sets = {s["code"]: s for s in document["dataSets"]}
    checked = 0
    for table in _tables(protected_quarter):
        values = dhis2_data_value_set(table, Dhis2Target(org_unit="TJ"))
        data_set = sets[values["dataSet"]]
        assert data_set["periodType"] == dhis2.PERIOD_TYPES[table.request.granularity]
        in_set = {e["dataElement"]["id"] for e in data_set["dataSetElements"]}
        for value in values["dataValues"]:
            element = elements[value["dataElement"]]
            assert element["id"] in in_set
            if value["categoryOptionCombo"] == "default":
                assert element["categoryCombo"] == {"id": dhis2.DEFAULT_CATEGORY_COMBO}
            else:
                combo = option_combos[value["categoryOptionCombo"]]
                assert combo["categoryCombo"] == element["categoryCombo"]
            checked += 1
        adx = ElementTree.fromstring(
            adx_document(table, Dhis2Target(org_unit="TJ"), exported=datetime.now(UTC))
        )
        for group in adx:
            assert group.attrib["dataSet"] == values["dataSet"]
            for value in group:
                attributes = dict(value.attrib)
                assert value.tag == f"{{{ADX_NAMESPACE}}}dataValue"
                assert attributes.pop("dataElement") in elements
                attributes.pop("value")
                assert set(attributes) <= categories
                assert set(attributes.values()) <= options
    assert checked > 200


def test_an_empty_description_is_refused() -> None:
    with pytest.raises(ValueError, match="no origin"):
        dhis2.metadata(dhis2.MetadataRequest(origins=(), destinations=("KZ",)))

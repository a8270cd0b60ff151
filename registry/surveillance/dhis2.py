"""DHIS2 codes and metadata: what an administrator imports before the first dataValueSets.

Pure. Every object the registry defines in DHIS2 has a code built from our own codes (the
measure code, the dimension names of `group_by`, the category codes of the extracts) and a
DHIS2 UID derived from that code, so the same metadata is produced on every run and a second
import updates rather than duplicates. The dataValueSets and ADX documents reference exactly
these codes (docs/surveillance.md, section 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

from registry.crypto.digests import sha256_text_hex
from registry.surveillance.cube import (
    AGE_BANDS,
    FLAT_DIMENSIONS,
    MAX_CROSSED,
    MEASURES,
    NO_DESTINATION,
    PURPOSES,
    SEXES,
    Granularity,
)

# The objects every DHIS2 instance has, with the UIDs fixed since DHIS2 2.28: a total is a
# data element with the default category combination and the default option combination.
DEFAULT_CATEGORY_COMBO = "bjDvmb4bfuf"
DEFAULT_CATEGORY_OPTION_COMBO = "HllvX50cXC0"
DEFAULT_COMBO_CODE = "default"

# DHIS2 identifiable objects: codes up to 50 characters, names up to 230, short names up to 50.
CODE_LENGTH = 50
PERIOD_TYPES = {
    Granularity.MONTH: "Monthly",
    Granularity.QUARTER: "Quarterly",
    Granularity.YEAR: "Yearly",
}
DATA_SET_PREFIX = "MIGEXAM"

MEASURE_NAMES = {
    "examined": "examinations recorded",
    "cxr-suggestive-tb": "chest X-ray suggestive of TB",
    "tb-bact-confirmed": "TB, bacteriologically confirmed",
    "tb-rif-resistant": "TB, rifampicin-resistant",
    "hiv-reactive-screening": "HIV reactive on screening",
    "hiv-confirmed": "HIV confirmed",
    "syphilis-reactive": "syphilis serology reactive",
    "referrals-made": "referrals to TB/HIV/STI programmes made",
    "referrals-completed": "referrals to TB/HIV/STI programmes completed",
}
DIMENSION_NAMES = {
    "origin": "origin",
    "destination": "destination",
    "purpose": "purpose",
    "sex": "sex",
    "age_band": "age band",
}
assert set(MEASURE_NAMES) == set(MEASURES)

_UID_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UID_CHARACTERS = "0123456789" + _UID_LETTERS


def uid(kind: str, code: str) -> str:
    """A DHIS2 UID for an object of `kind` with `code`: 11 characters, a letter first.

    Derived from SHA-256 of the kind and code, so the same object has the same UID in every
    export and in every deployment (a re-import updates, it never duplicates).
    """
    number = int(sha256_text_hex(f"exam-registry:{kind}:{code}"), 16)
    number, first = divmod(number, len(_UID_LETTERS))
    characters = [_UID_LETTERS[first]]
    for _ in range(10):
        number, index = divmod(number, len(_UID_CHARACTERS))
        characters.append(_UID_CHARACTERS[index])
    return "".join(characters)


def data_set_code(granularity: Granularity | str, prefix: str = DATA_SET_PREFIX) -> str:
    """One data set per period type (DHIS2 data sets have one): MIGEXAM_QUARTERLY, ..."""
    return f"{prefix}_{PERIOD_TYPES[Granularity(granularity)].upper()}"


def data_element_code(measure: str, dimensions: Sequence[str]) -> str:
    """The measure code for its total; `<measure>.<dimension>...` for a breakdown."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    return ".".join((measure, *dimensions))


def category_combo_code(dimensions: Sequence[str]) -> str:
    """`default` for a total, else the dimensions in canonical order joined by dots."""
    return ".".join(dimensions) or DEFAULT_COMBO_CODE


def option_code(dimension: str, code: str) -> str:
    """A category option: `<dimension>.<category>` (`sex.female`, `destination.none`).

    The dimension is part of the code because one country can be both an origin and a
    destination, and one option may not stand twice in an option combination.
    """
    if dimension not in FLAT_DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    return f"{dimension}.{code}"


def option_combo_code(codes: Mapping[str, str], dimensions: Sequence[str]) -> str:
    """The category option combination of a cell: its options joined by `|`, or `default`."""
    return "|".join(option_code(d, codes[d]) for d in dimensions) or DEFAULT_COMBO_CODE


def breakdowns(granularity: Granularity) -> list[tuple[str, ...]]:
    """Every set of dimensions a table of this period length may be broken down by."""
    limit = MAX_CROSSED[granularity]
    return [dims for size in range(limit + 1) for dims in combinations(FLAT_DIMENSIONS, size)]


@dataclass(frozen=True)
class MetadataRequest:
    """What to describe: the origins and destinations that occur, and the ministry's org unit."""

    origins: Sequence[str]
    destinations: Sequence[str]
    org_unit_id: str | None = None  # the ministry's org unit in its DHIS2, assigned the data sets
    prefix: str = DATA_SET_PREFIX


def categories(request: MetadataRequest) -> dict[str, tuple[str, ...]]:
    """The categories of every dimension, in the order the extracts list them."""
    destinations = sorted(set(request.destinations) - {NO_DESTINATION})
    if NO_DESTINATION in request.destinations:
        destinations.append(NO_DESTINATION)
    return {
        "origin": tuple(sorted(set(request.origins))),
        "destination": tuple(destinations),
        "purpose": PURPOSES,
        "sex": SEXES,
        "age_band": AGE_BANDS,
    }


def _ref(kind: str, code: str) -> dict[str, str]:
    return {"id": uid(kind, code)}


def _name(text: str) -> str:
    return text[:1].upper() + text[1:]


def metadata(request: MetadataRequest) -> dict[str, Any]:
    """The DHIS2 metadata import document (POST /api/metadata) for every extract's values.

    Data sets (one per period type), data elements (one per measure and breakdown, with the
    published totals as data elements of their own), categories, category options, category
    combinations and their option combinations, all with UIDs derived from their codes. The
    default category combination and option combination are referenced, not exported.
    """
    options = categories(request)
    for dimension, codes in options.items():
        if not codes:
            raise ValueError(f"no {dimension} to describe")
    category_options = [
        {
            "id": uid("categoryOption", option_code(d, c)),
            "code": option_code(d, c),
            "name": f"{_name(DIMENSION_NAMES[d])}: {c}",
            "shortName": option_code(d, c),
        }
        for d in FLAT_DIMENSIONS
        for c in options[d]
    ]
    category_list = [
        {
            "id": uid("category", d),
            "code": d,
            "name": f"Migrant examinations: {DIMENSION_NAMES[d]}",
            "shortName": f"MX {DIMENSION_NAMES[d]}",
            "dataDimensionType": "DISAGGREGATION",
            "dataDimension": True,
            "categoryOptions": [_ref("categoryOption", option_code(d, c)) for c in options[d]],
        }
        for d in FLAT_DIMENSIONS
    ]
    all_breakdowns = breakdowns(Granularity.YEAR)  # the widest: quarters and years alike
    combos = []
    option_combos = []
    for dims in all_breakdowns:
        if not dims:
            continue
        code = category_combo_code(dims)
        combos.append(
            {
                "id": uid("categoryCombo", code),
                "code": code,
                "name": "Migrant examinations by " + " and ".join(DIMENSION_NAMES[d] for d in dims),
                "dataDimensionType": "DISAGGREGATION",
                "skipTotal": True,
                "categories": [_ref("category", d) for d in dims],
            }
        )
        for chosen in product(*(options[d] for d in dims)):
            cell = dict(zip(dims, chosen, strict=True))
            combo_code = option_combo_code(cell, dims)
            option_combos.append(
                {
                    "id": uid("categoryOptionCombo", combo_code),
                    "code": combo_code,
                    "name": ", ".join(f"{_name(DIMENSION_NAMES[d])}: {cell[d]}" for d in dims),
                    "categoryCombo": _ref("categoryCombo", code),
                    "categoryOptions": [
                        _ref("categoryOption", option_code(d, cell[d])) for d in dims
                    ],
                }
            )
    elements = []
    for measure in MEASURES:
        for dims in all_breakdowns:
            code = data_element_code(measure, dims)
            by = " by " + " and ".join(DIMENSION_NAMES[d] for d in dims) if dims else ""
            elements.append(
                {
                    "id": uid("dataElement", code),
                    "code": code,
                    "name": f"Migrant examinations: {MEASURE_NAMES[measure]}{by}",
                    "shortName": code,
                    "formName": _name(MEASURE_NAMES[measure]),
                    "domainType": "AGGREGATE",
                    "valueType": "INTEGER_ZERO_OR_POSITIVE",
                    # each period's own protected count: adding months (or categories) up
                    # would count twice and pass over withheld gaps
                    "aggregationType": "NONE",
                    "zeroIsSignificant": True,
                    "categoryCombo": (
                        _ref("categoryCombo", category_combo_code(dims))
                        if dims
                        else {"id": DEFAULT_CATEGORY_COMBO}
                    ),
                }
            )
    data_sets = []
    for granularity, period_type in PERIOD_TYPES.items():
        code = data_set_code(granularity, request.prefix)
        data_set: dict[str, Any] = {
            "id": uid("dataSet", code),
            "code": code,
            "name": f"Migrant examinations, protected surveillance counts ({period_type.lower()})",
            "shortName": code,
            "periodType": period_type,
            "categoryCombo": {"id": DEFAULT_CATEGORY_COMBO},
            "dataSetElements": [
                {
                    "dataSet": _ref("dataSet", code),
                    "dataElement": _ref("dataElement", data_element_code(measure, dims)),
                }
                for measure in MEASURES
                for dims in breakdowns(granularity)
            ],
        }
        if request.org_unit_id is not None:
            data_set["organisationUnits"] = [{"id": request.org_unit_id}]
        data_sets.append(data_set)
    return {
        "categoryOptions": category_options,
        "categories": category_list,
        "categoryCombos": combos,
        "categoryOptionCombos": option_combos,
        "dataElements": elements,
        "dataSets": data_sets,
    }

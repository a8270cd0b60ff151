"""No surveillance cell below k is ever published, whatever a ministry asks for.

The oracle is independent of the cube: the true count of every cell an extract shows is summed
again from the microcells, and no published cell may hold a count from 1 to k-1. The rendered
formats show nothing for a withheld cell.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Mapping, Sequence
from itertools import product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.surveillance.cube import (
    AGE_BANDS,
    ALL,
    FLAT_DIMENSIONS,
    MAX_CROSSED,
    MEASURES,
    PURPOSES,
    SEXES,
    Granularity,
    Microcell,
    Period,
)
from registry.surveillance.extract import ExtractRequest, release
from registry.surveillance.formats import csv_text, json_document

YEAR = 2026
ORIGINS = ("TJ", "KG")
DESTINATIONS = ("RU", "KZ")
BOUNDS = {
    Granularity.MONTH: ("2026-01", "2026-03"),
    Granularity.QUARTER: ("2026-Q1", "2026-Q1"),
    Granularity.YEAR: ("2026", "2026"),
}


def _microcells(seed: int) -> list[Microcell]:
    """Three months of small, uneven counts: most cells below any k, a few large ones."""
    rng = random.Random(seed)
    cells: list[Microcell] = []
    leaves = product(range(1, 4), ORIGINS, DESTINATIONS, PURPOSES[:2], SEXES[:2], AGE_BANDS[1:3])
    for month, *codes in leaves:
        examined = rng.choice((0, 0, 1, 2, 3, 4, 6, 9, 25))
        if not examined:
            continue
        reactive = rng.randint(0, min(examined, 3))
        cxr = rng.randint(0, min(examined, 2))
        counts = {
            "examined": examined,
            "hiv-reactive-screening": reactive,
            "hiv-confirmed": rng.randint(0, reactive),
            "cxr-suggestive-tb": cxr,
            "tb-bact-confirmed": rng.randint(0, cxr),
            "referrals-made": reactive + cxr,
        }
        cells.append(((f"{YEAR}-{month:02d}", *codes), counts))
    return cells


def _true_count(
    microcells: Sequence[Microcell], period: Period, codes: Mapping[str, str], measure: str
) -> int:
    """The count of a cell, summed again from the microcells."""
    total = 0
    for key, counts in microcells:
        month = Period.parse(key[0])
        if month.year != period.year or month.index not in period.months:
            continue
        by_dimension = dict(zip(FLAT_DIMENSIONS, key[1:], strict=True))
        if all(code == ALL or by_dimension[d] == code for d, code in codes.items()):
            total += counts.get(measure, 0)
    return total


@st.composite
def requests(draw: st.DrawFn) -> ExtractRequest:
    granularity = draw(st.sampled_from(list(BOUNDS)))
    scoped = draw(st.booleans())
    where = {"origin": "TJ"} if scoped else {}
    free = [d for d in FLAT_DIMENSIONS if d not in where]
    size = draw(st.integers(0, MAX_CROSSED[granularity] - len(where)))
    grouping = tuple(draw(st.permutations(free))[:size])
    first, last = BOUNDS[granularity]
    return ExtractRequest(
        granularity=granularity,
        first=first,
        last=last,
        grouping=grouping,
        k=draw(st.sampled_from((3, 5, 7))),
        rounding=draw(st.sampled_from((None, 5))),
        where=where,
    )


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), request=requests())
def test_no_published_cell_holds_a_count_below_k(seed: int, request: ExtractRequest) -> None:
    microcells = _microcells(seed)
    table = release(microcells, request)
    published = 0
    for cell in table.cells:
        true = _true_count(microcells, cell.period, cell.codes, cell.measure)
        if cell.suppressed:
            assert cell.value is None
            continue
        published += 1
        assert not 1 <= true < request.k, (cell, true)
        if request.rounding is None:
            assert cell.value == true
    assert published, "every cell was withheld: the property says nothing"
    document = json_document(table)
    assert all((c["value"] is None) == (c["flag"] == "suppressed") for c in document["cells"])
    rows = list(csv.DictReader(io.StringIO(csv_text(table))))
    assert all((r["value"] == "") == (r["flag"] == "suppressed") for r in rows)
    assert {r["measure"] for r in rows} == set(MEASURES)

"""Synthetic microcells shaped like the migrant population: demo data, benchmarks and tests.

The shares and rates follow the project's domain facts (corridors, sexes, ages, TB and HIV
findings). Nothing here is a real count.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from registry.surveillance.cube import AGE_BANDS, PURPOSES, SEXES, Microcell

ORIGINS = {"TJ": 0.4, "UZ": 0.35, "KG": 0.2, "TM": 0.05}
DESTINATIONS = {"RU": 0.6, "KZ": 0.35, "none": 0.05}
PURPOSE_SHARE = dict(zip(PURPOSES, (0.5, 0.15, 0.3, 0.05), strict=True))
SEX_SHARE = dict(zip(SEXES, (0.8, 0.18, 0.01, 0.01), strict=True))
AGE_SHARE = dict(zip(AGE_BANDS, (0.01, 0.4, 0.58, 0.01), strict=True))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n * p < 30:
        return sum(1 for _ in range(n) if rng.random() < p)
    spread = math.sqrt(n * p * (1 - p))
    return max(0, min(n, round(rng.gauss(n * p, spread))))


def findings(rng: random.Random, examined: int) -> dict[str, int]:
    """Counts of every measure for `examined` people, at the rates DOMAIN-FACTS gives."""
    cxr = _binomial(rng, examined, 0.03)
    bact = _binomial(rng, cxr, 0.1)
    reactive = _binomial(rng, examined, 0.015)
    syphilis = _binomial(rng, examined, 0.01)
    made = cxr + reactive + syphilis
    return {
        "examined": examined,
        "cxr-suggestive-tb": cxr,
        "tb-bact-confirmed": bact,
        "tb-rif-resistant": _binomial(rng, bact, 0.2),
        "hiv-reactive-screening": reactive,
        "hiv-confirmed": _binomial(rng, reactive, 0.4),
        "syphilis-reactive": syphilis,
        "referrals-made": made,
        "referrals-completed": _binomial(rng, made, 0.6),
    }


def population(
    seed: int,
    *,
    year: int = 2026,
    months: int = 12,
    per_month: int = 20_000,
    origins: Sequence[str] = tuple(ORIGINS),
    destinations: Sequence[str] = tuple(DESTINATIONS),
    purposes: Sequence[str] = PURPOSES,
    sexes: Sequence[str] = SEXES,
    ages: Sequence[str] = AGE_BANDS,
) -> list[Microcell]:
    """Microcells for `months` months of a year, restricted to the categories given."""
    rng = random.Random(seed)
    cells: list[Microcell] = []
    for month in range(1, months + 1):
        for o in origins:
            for d in destinations:
                for p in purposes:
                    for s in sexes:
                        for a in ages:
                            share = (
                                ORIGINS[o]
                                * DESTINATIONS[d]
                                * PURPOSE_SHARE[p]
                                * SEX_SHARE[s]
                                * AGE_SHARE[a]
                            )
                            mean = per_month * share * rng.uniform(0.5, 1.5)
                            examined = int(rng.expovariate(1 / mean)) if mean > 0 else 0
                            if examined and not (p == "pre-departure" and d == "none"):
                                key = (f"{year}-{month:02d}", o, d, p, s, a)
                                cells.append((key, findings(rng, examined)))
    return cells

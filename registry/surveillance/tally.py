"""What one examination adds to the surveillance counts: its microcell and its measures.

Pure: from the parsed record, at write time. The measure definitions are the ones the
Measure resources in fhir_profiles/measures describe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from registry.fhir import ExaminationRecord
from registry.surveillance.cube import MEASURES, NO_DESTINATION, measure_column

# Referrals to the programmes surveillance follows (TB, HIV, sexually transmitted infections).
PROGRAMME_REFERRALS = frozenset(
    [
        *("tb-suspected", "tb-confirmed", "tb-drug-resistant"),
        *("hiv-reactive", "hiv-confirmed", "syphilis"),
    ]
)
_BACTERIOLOGICAL_TB = ("tb-naa", "sputum-smear", "sputum-culture")
_SYPHILIS = ("syphilis-nontreponemal", "syphilis-treponemal")

MicrocellKey = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class Tally:
    """One version's contribution: its microcell key and a count per measure."""

    key: MicrocellKey  # month, origin, destination, purpose, sex, age band
    counts: dict[str, int]

    def to_bytes(self) -> bytes:
        """The form sealed with the version."""
        return json.dumps({"key": list(self.key), "counts": self.counts}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Tally:
        """Read what `to_bytes` wrote."""
        document = json.loads(raw)
        key = tuple(document["key"])
        if len(key) != 6:
            raise ValueError("a tally key has six parts")
        stored = document["counts"]
        # tallies sealed before the measure codes were unified name them by their column
        return cls(
            key=key,
            counts={m: int(stored.get(m, stored.get(measure_column(m), 0))) for m in MEASURES},
        )

    def with_completed_referrals(self, completed: int) -> Tally:
        """The same contribution with `completed` of its referrals recorded as completed."""
        counts = dict(self.counts)
        counts["referrals-completed"] = min(max(completed, 0), counts["referrals-made"])
        return Tally(self.key, counts)


def age_band(birth_date: date, on: date) -> str:
    """The age band of the official statistics: <18, 18-29, 30-59, 60+."""
    age = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if age < 18:
        return "<18"
    if age < 30:
        return "18-29"
    if age < 60:
        return "30-59"
    return "60+"


def origin_of(record: ExaminationRecord, clinic_country: str) -> str:
    """The migrant's country of origin: citizenship when recorded, else the clinic's country."""
    return record.person.citizenship or clinic_country


def tally_of(
    record: ExaminationRecord, *, clinic_country: str, referrals_completed: int = 0
) -> Tally:
    """The microcell and measures of one examination record."""
    positive = {
        result.concept for result in record.results if result.outcome in ("positive", "abnormal-tb")
    }
    tb_confirmed = any(concept in positive for concept in _BACTERIOLOGICAL_TB)
    hiv_confirmed = "hiv-confirmation" in positive
    referrals = sum(1 for r in record.referrals if r.reason in PROGRAMME_REFERRALS)
    counts = {
        "examined": 1,
        "cxr-suggestive-tb": int("chest-xray" in positive),
        "tb-bact-confirmed": int(tb_confirmed),
        # resistance is only counted with a bacteriological confirmation (Xpert reports both)
        "tb-rif-resistant": int(tb_confirmed and "tb-rif-resistance" in positive),
        "hiv-reactive-screening": int("hiv-screening" in positive or hiv_confirmed),
        "hiv-confirmed": int(hiv_confirmed),
        "syphilis-reactive": int(any(concept in positive for concept in _SYPHILIS)),
        "referrals-made": referrals,
        "referrals-completed": min(referrals_completed, referrals),
    }
    key: MicrocellKey = (
        f"{record.examination_date.year:04d}-{record.examination_date.month:02d}",
        origin_of(record, clinic_country),
        record.destination or NO_DESTINATION,
        record.purpose,
        record.person.sex,
        age_band(record.person.birth_date, record.examination_date),
    )
    return Tally(key=key, counts=counts)

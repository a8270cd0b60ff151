"""What the examination form may offer: the rulesets in force and our ValueSets' codes.

The form is driven by these, so only codes of our ValueSets can be picked and every test a
chosen destination's ruleset requires is asked for. Labels are translated here; the codes are
the profile's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.certificates.catalogue import rulesets
from registry.certificates.rulesets import Ruleset
from registry.clinic_portal.wording import N_
from registry.fhir.terminology import (
    CANONICAL_BASE,
    COUNTRY_VS,
    DEPENDANT_RELATIONSHIP_VS,
    EXAM_PURPOSE_VS,
    EXAM_TEST_SYSTEM,
    IDENTITY_DOCUMENT_TYPE_VS,
    LOINC,
    REFERRAL_REASON_VS,
    Terminology,
    load_terminology,
)

TESTS = {
    "chest-xray": N_("Chest X-ray"),
    "tb-naa": N_("TB molecular test (Xpert MTB/RIF)"),
    "tb-rif-resistance": N_("Rifampicin resistance"),
    "sputum-smear": N_("Sputum smear"),
    "sputum-culture": N_("Sputum culture"),
    "igra": N_("IGRA"),
    "hiv-screening": N_("HIV screening test"),
    "hiv-confirmation": N_("HIV confirmation test"),
    "syphilis-nontreponemal": N_("Syphilis, non-treponemal test (RPR)"),
    "syphilis-treponemal": N_("Syphilis, treponemal test"),
    "hbsag": N_("Hepatitis B surface antigen"),
    "hcv-ab": N_("Hepatitis C antibody"),
    "leprosy-clinical": N_("Clinical examination for leprosy"),
    "drug-screening": N_("Narcology examination"),
    "psychiatric-exam": N_("Psychiatric examination"),
}
RESULTS = {
    "normal": N_("Normal"),
    "abnormal-suggestive-of-tb": N_("Abnormal, suggestive of TB"),
    "abnormal-other": N_("Abnormal, other"),
    "10828004": N_("Positive"),
    "11214006": N_("Reactive"),
    "131194007": N_("Non-reactive"),
    "260373001": N_("Detected"),
    "260385009": N_("Negative"),
    "260415000": N_("Not detected"),
    "82334004": N_("Indeterminate"),
    "absent": N_("Absent"),
    "present": N_("Present"),
}
DOCUMENT_TYPES = {
    "passport": N_("Passport"),
    "id-card": N_("Identity card"),
    "birth-certificate": N_("Birth certificate"),
    "residence-permit": N_("Residence permit"),
}
PURPOSES = {
    "pre-departure": N_("Before departure"),
    "return": N_("On return"),
    "in-host": N_("In the host country"),
    "periodic": N_("Periodic"),
}
REFERRAL_REASONS = {
    "tb-suspected": N_("Tuberculosis suspected"),
    "tb-confirmed": N_("Tuberculosis confirmed"),
    "tb-drug-resistant": N_("Drug-resistant tuberculosis"),
    "hiv-reactive": N_("HIV reactive"),
    "hiv-confirmed": N_("HIV confirmed"),
    "syphilis": N_("Syphilis"),
    "hepatitis-b": N_("Hepatitis B"),
    "hepatitis-c": N_("Hepatitis C"),
    "other": N_("Other"),
}
RELATIONSHIPS = {
    "SPS": N_("spouse"),
    "FTH": N_("father"),
    "MTH": N_("mother"),
    "PRN": N_("parent"),
    "GUARD": N_("guardian"),
}
CATEGORY = {"chest-xray": "imaging"}  # the rest: laboratory, or exam for clinical examinations


def _codes(terminology: Terminology, value_set: str) -> set[str]:
    return {code for _system, code in terminology.value_sets[value_set]}


Gettext = Callable[[str], str]


def _labelled(labels: dict[str, str], codes: set[str], _: Gettext) -> list[dict[str, str]]:
    missing = codes - set(labels)
    if missing:
        raise LookupError(f"the portal has no label for {sorted(missing)}")
    return [{"code": code, "label": _(label)} for code, label in labels.items() if code in codes]


def _test(terminology: Terminology, key: str, _: Gettext) -> dict[str, Any]:
    concept = terminology.concepts[key]
    if concept.loinc_codes:
        code = {"system": LOINC, "code": concept.loinc_codes[0]}
        category = CATEGORY.get(key, "laboratory")
    else:
        code = {"system": EXAM_TEST_SYSTEM, "code": key}
        category = "exam"
    results = sorted(terminology.value_sets[concept.result_value_set], key=lambda m: m[1])
    return {
        "key": key,
        "label": _(TESTS[key]),
        "code": code,
        "loinc": list(concept.loinc_codes),
        "display": concept.display,
        "category": category,
        "results": [
            {"system": system, "code": value, "label": _(RESULTS[value])}
            for system, value in sorted(
                results, key=lambda m: list(RESULTS).index(m[1]) if m[1] in RESULTS else 99
            )
        ],
    }


def _ruleset(ruleset: Ruleset) -> dict[str, Any]:
    return {
        "destination": ruleset.destination,
        "version": ruleset.version,
        "title": ruleset.title,
        "purposes": sorted(ruleset.accepted_purposes),
        "required": [list(required.any_of) for required in ruleset.required_tests],
        "age_rules": [
            {"below_age": rule.below_age, "required": [list(r.any_of) for r in rule.required_tests]}
            for rule in ruleset.age_rules
        ],
        "validity_days": ruleset.validity_days,
    }


def in_force(session: Session, today: date) -> list[Ruleset]:
    """The newest version in force today of each destination's ruleset."""
    latest: dict[str, Ruleset] = {}
    for ruleset in rulesets(session):
        if ruleset.in_force_on(today):
            known = latest.get(ruleset.destination)
            if known is None or ruleset.version > known.version:
                latest[ruleset.destination] = ruleset
    return [latest[d] for d in sorted(latest)]


def form_catalogue(
    session: Session, today: date, countries: dict[str, str], gettext: Gettext
) -> dict[str, Any]:
    """Everything the examination form offers, labelled in the page's language."""
    terminology = load_terminology()
    missing = set(TESTS) ^ set(terminology.concepts)
    if missing:
        raise LookupError(f"the portal's tests and exam-test differ: {sorted(missing)}")
    country_codes = sorted(_codes(terminology, COUNTRY_VS))
    return {
        "canonical": CANONICAL_BASE,
        "tests": {key: _test(terminology, key, gettext) for key in TESTS},
        "rulesets": [_ruleset(r) for r in in_force(session, today)],
        "purposes": _labelled(PURPOSES, _codes(terminology, EXAM_PURPOSE_VS), gettext),
        "document_types": _labelled(
            DOCUMENT_TYPES, _codes(terminology, IDENTITY_DOCUMENT_TYPE_VS), gettext
        ),
        "referral_reasons": _labelled(
            REFERRAL_REASONS, _codes(terminology, REFERRAL_REASON_VS), gettext
        ),
        "relationships": _labelled(
            RELATIONSHIPS, _codes(terminology, DEPENDANT_RELATIONSHIP_VS), gettext
        ),
        "countries": [{"code": c, "label": countries.get(c, c)} for c in country_codes],
    }

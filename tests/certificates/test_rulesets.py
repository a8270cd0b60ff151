"""Destination rulesets: the shipped files, the loader's checks, and the verdicts they give."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificates.rulesets import (
    CONCEPTS,
    OUTCOMES_BY_CONCEPT,
    PURPOSES,
    Ruleset,
    evaluate,
    load_ruleset,
    load_rulesets,
    ruleset_in_force,
)


@dataclass(frozen=True)
class Result:
    """A structured test result as the FHIR engine hands it over."""

    concept: str
    outcome: str
    effective: date


Document = Callable[[str], dict[str, Any]]
EXAM = date(2025, 3, 3)
TODAY = date(2025, 3, 10)
BORN = date(1991, 4, 27)


def results(*pairs: tuple[str, str], on: date = EXAM) -> list[Result]:
    return [Result(concept, outcome, on) for concept, outcome in pairs]


FULL_NEGATIVE_PANEL = results(
    ("chest-xray", "normal"),
    ("hiv-screening", "negative"),
    ("syphilis-nontreponemal", "negative"),
    ("syphilis-treponemal", "negative"),
    ("leprosy-clinical", "negative"),
    ("drug-screening", "negative"),
    ("psychiatric-exam", "negative"),
)


def codes(verdict: Any) -> list[str]:
    return [reason.code for reason in verdict.reasons]


def verdict_for(ruleset: Ruleset, found: list[Result], **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "purpose": "pre-departure",
        "results": found,
        "examination_date": EXAM,
        "birth_date": BORN,
        "today": TODAY,
    }
    arguments.update(overrides)
    return evaluate(ruleset, **arguments)


# --- the shipped files -----------------------------------------------------------------------


def test_shipped_rulesets_load_and_are_named_after_their_content(rulesets_dir: Path) -> None:
    rulesets = load_rulesets(rulesets_dir)
    assert [(r.destination, r.version) for r in rulesets] == [("KZ", 1), ("RU", 1), ("TM", 1)]
    for ruleset in rulesets:
        assert ruleset.validity_days == 90
        assert "return" not in ruleset.accepted_purposes
        assert ruleset.legal_basis and ruleset.assumptions


def test_shipped_rulesets_validate_against_the_json_schema(
    rulesets_dir: Path, ruleset_document: Document
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = json.loads((rulesets_dir / "ruleset.schema.json").read_text("utf-8"))
    validator = jsonschema_rs.validator_for(schema)
    for destination in ("KZ", "RU", "TM"):
        document = ruleset_document(destination)
        assert [e.message for e in validator.iter_errors(document)] == []


def test_shipped_rulesets_cite_the_legal_anchors(ruleset_document: Document) -> None:
    citations = {
        d: " ".join(b["citation"] for b in ruleset_document(d)["legal_basis"])
        for d in ("KZ", "RU", "TM")
    }
    assert "Order 664" in citations["KZ"] and "Order 665" in citations["KZ"]
    assert "Article 12" in citations["KZ"]
    assert "Article 11" in citations["TM"]
    assert "patent" in citations["RU"]


def test_kz_requires_chest_xray_and_an_hiv_test_and_hiv_never_disqualifies(kz: Ruleset) -> None:
    assert [t.any_of for t in kz.required_tests] == [
        ("chest-xray",),
        ("hiv-screening", "hiv-confirmation"),
    ]
    hiv_concepts = {"hiv-screening", "hiv-confirmation"}
    for finding in kz.disqualifying_findings:
        assert not {m.concept for m in finding.when} & hiv_concepts


def test_authority_sees_only_the_concepts_its_ruleset_uses(kz: Ruleset, tm: Ruleset) -> None:
    assert {"chest-xray", "tb-naa", "hiv-screening", "psychiatric-exam"} <= kz.concepts
    assert not {"igra", "hbsag", "hcv-ab"} & kz.concepts
    assert "psychiatric-exam" not in tm.concepts


# --- the loader ------------------------------------------------------------------------------


def broken(document: dict[str, Any], change: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(validity="90"), "unknown member 'validity'"),
        (lambda d: d.pop("validity_days"), "missing member 'validity_days'"),
        (lambda d: d.update(destination="Kazakhstan"), "destination"),
        (lambda d: d.update(version=True), "version: expected an integer"),
        (lambda d: d.update(validity_days=0), "validity_days"),
        (lambda d: d.update(effective_until="2024-12-31"), "effective_until: before"),
        (lambda d: d.update(effective_from="2025-02-30"), "not a calendar date"),
        (lambda d: d["accepted_purposes"].append("tourism"), "unknown purpose 'tourism'"),
        (
            lambda d: d["required_tests"][0]["any_of"].append("x-ray"),
            r"required_tests\[0\]\.any_of\[1\]: unknown test concept 'x-ray'",
        ),
        (
            lambda d: d["disqualifying_findings"][0]["when"][0].update(outcomes=["abnormal-tb"]),
            "'abnormal-tb' is not an outcome of tb-naa",
        ),
        (lambda d: d["required_tests"].clear(), "expected at least one item"),
        (
            lambda d: d["extensions"].append(
                {"from": "2025-05-01", "until": "2025-04-01", "extra_days": 30, "reason": "x"}
            ),
            r"extensions\[0\]\.until: before from",
        ),
        (lambda d: d["assumptions"].append("  "), r"assumptions\[\d+\]: expected non-empty text"),
    ],
)
def test_load_ruleset_names_the_problem(
    ruleset_document: Document, change: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_ruleset(broken(ruleset_document("KZ"), change))


def test_schema_rejects_what_the_loader_rejects(
    rulesets_dir: Path, ruleset_document: Document
) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = json.loads((rulesets_dir / "ruleset.schema.json").read_text("utf-8"))
    validator = jsonschema_rs.validator_for(schema)
    for change in (
        lambda d: d.update(validity="90"),
        lambda d: d.pop("validity_days"),
        lambda d: d["accepted_purposes"].append("tourism"),
        lambda d: d["required_tests"][0]["any_of"].append("x-ray"),
        lambda d: d.update(validity_days=0),
    ):
        assert not validator.is_valid(broken(ruleset_document("KZ"), change))


def test_load_rulesets_refuses_a_file_named_for_another_version(
    tmp_path: Path, ruleset_document: Document
) -> None:
    (tmp_path / "KZ.v2.json").write_text(json.dumps(ruleset_document("KZ")), "utf-8")
    with pytest.raises(ValueError, match=r"KZ\.v2\.json: holds KZ version 1"):
        load_rulesets(tmp_path)


def test_ruleset_in_force_takes_the_highest_version_in_force_that_day(
    ruleset_document: Document,
) -> None:
    first = ruleset_document("KZ") | {"effective_until": "2025-06-30"}
    second = ruleset_document("KZ") | {"version": 2, "effective_from": "2025-07-01"}
    rulesets = [load_ruleset(first), load_ruleset(second)]

    def version_on(day: date, destination: str = "KZ") -> int | None:
        ruleset = ruleset_in_force(rulesets, destination=destination, on=day)
        return None if ruleset is None else ruleset.version

    assert version_on(date(2025, 3, 1)) == 1
    assert version_on(date(2025, 6, 30)) == 1
    assert version_on(date(2025, 7, 1)) == 2
    assert version_on(date(2024, 1, 1)) is None
    assert version_on(date(2025, 3, 1), "RU") is None


# --- verdicts --------------------------------------------------------------------------------


def test_a_clean_examination_meets_every_destination(kz: Ruleset, ru: Ruleset, tm: Ruleset) -> None:
    for ruleset in (kz, ru, tm):
        verdict = verdict_for(ruleset, FULL_NEGATIVE_PANEL)
        assert verdict.met, verdict.reasons
        assert verdict.destination == ruleset.destination
        assert verdict.ruleset_version == 1
        assert verdict.valid_from == EXAM
        # Day one is the examination day; 90 days end on the 89th day after it.
        assert verdict.valid_until == EXAM + timedelta(days=89)


def test_the_same_hiv_positive_examination_meets_kz_and_fails_ru_and_tm(
    kz: Ruleset, ru: Ruleset, tm: Ruleset
) -> None:
    found = [
        *FULL_NEGATIVE_PANEL[:1],
        *FULL_NEGATIVE_PANEL[2:],
        *results(("hiv-screening", "positive"), ("hiv-confirmation", "positive")),
    ]
    assert verdict_for(kz, found).met
    for ruleset in (ru, tm):
        verdict = verdict_for(ruleset, found)
        assert not verdict.met
        assert verdict.valid_from is None and verdict.valid_until is None
        assert [(r.code, r.concept) for r in verdict.reasons] == [
            ("disqualifying-finding", "hiv-confirmation")
        ]


def test_a_reactive_hiv_screen_needs_confirmation_where_hiv_disqualifies(
    kz: Ruleset, ru: Ruleset
) -> None:
    reactive = [*FULL_NEGATIVE_PANEL[:1], *FULL_NEGATIVE_PANEL[2:]]
    reactive += results(("hiv-screening", "positive"))
    assert verdict_for(kz, reactive).met
    assert codes(verdict_for(ru, reactive)) == ["unresolved-finding"]
    cleared = [*reactive, *results(("hiv-confirmation", "negative"), on=EXAM + timedelta(days=4))]
    verdict = verdict_for(ru, cleared)
    assert verdict.met
    # Valid from the day the clearing result existed; still counted from the first test.
    assert verdict.valid_from == EXAM + timedelta(days=4)
    assert verdict.valid_until == EXAM + timedelta(days=89)


@pytest.mark.parametrize(
    "finding",
    [
        ("tb-naa", "positive"),
        ("sputum-smear", "positive"),
        ("sputum-culture", "positive"),
        ("tb-rif-resistance", "positive"),
    ],
)
def test_tuberculosis_disqualifies_everywhere(
    kz: Ruleset, ru: Ruleset, tm: Ruleset, finding: tuple[str, str]
) -> None:
    found = [*FULL_NEGATIVE_PANEL, *results(finding)]
    for ruleset in (kz, ru, tm):
        verdict = verdict_for(ruleset, found)
        assert not verdict.met
        assert ("disqualifying-finding", finding[0]) in [
            (r.code, r.concept) for r in verdict.reasons
        ]
        assert any(r.text.startswith("tuberculosis") for r in verdict.reasons)


def test_an_x_ray_suggestive_of_tb_needs_negative_bacteriology(kz: Ruleset) -> None:
    suggestive = results(("chest-xray", "abnormal-tb"), ("hiv-screening", "negative"))
    verdict = verdict_for(kz, suggestive)
    assert codes(verdict) == ["unresolved-finding"]
    assert "tb-naa negative" in verdict.reasons[0].text
    smear_only = [*suggestive, *results(("sputum-smear", "negative"))]
    assert codes(verdict_for(kz, smear_only)) == ["unresolved-finding"]
    assert verdict_for(kz, [*suggestive, *results(("tb-naa", "negative"))]).met
    confirmed = verdict_for(kz, [*suggestive, *results(("tb-naa", "positive"))])
    # Confirmed TB is reported once, as a disqualifying finding, not also as unresolved.
    assert codes(confirmed) == ["disqualifying-finding"]


def test_a_repeat_test_clears_an_indeterminate_result_but_never_a_positive(kz: Ruleset) -> None:
    base = results(("chest-xray", "normal"), ("hiv-screening", "negative"))
    later = EXAM + timedelta(days=2)
    retested = [
        *base,
        *results(("tb-naa", "indeterminate")),
        *results(("tb-naa", "negative"), on=later),
    ]
    assert verdict_for(kz, retested).met
    reversed_positive = [
        *base,
        *results(("tb-naa", "positive")),
        *results(("tb-naa", "negative"), on=later),
    ]
    assert codes(verdict_for(kz, reversed_positive)) == ["disqualifying-finding"]


def test_syphilis_disqualifies_only_when_both_tests_are_reactive(kz: Ruleset, tm: Ruleset) -> None:
    base = results(("chest-xray", "normal"), ("hiv-screening", "negative"))
    treated = [
        *base,
        *results(("syphilis-treponemal", "positive"), ("syphilis-nontreponemal", "negative")),
    ]
    assert verdict_for(kz, treated).met
    active = [
        *base,
        *results(("syphilis-treponemal", "positive"), ("syphilis-nontreponemal", "positive")),
    ]
    for ruleset in (kz, tm):
        assert codes(verdict_for(ruleset, active)) == ["disqualifying-finding"]
    unconfirmed = [*base, *results(("syphilis-nontreponemal", "positive"))]
    assert codes(verdict_for(kz, unconfirmed)) == ["unresolved-finding"]


@pytest.mark.parametrize(
    ("concept", "destinations"),
    [
        ("leprosy-clinical", {"KZ", "RU"}),
        ("drug-screening", {"KZ", "RU", "TM"}),
        ("psychiatric-exam", {"KZ"}),
        ("hbsag", set()),
        ("hcv-ab", set()),
        ("igra", set()),
    ],
)
def test_which_positive_findings_disqualify_where(
    kz: Ruleset, ru: Ruleset, tm: Ruleset, concept: str, destinations: set[str]
) -> None:
    found = [r for r in FULL_NEGATIVE_PANEL if r.concept != concept]
    found += results((concept, "positive"))
    refused = {r.destination for r in (kz, ru, tm) if not verdict_for(r, found).met}
    assert refused == destinations


def test_a_missing_required_test_is_named(kz: Ruleset, ru: Ruleset) -> None:
    verdict = verdict_for(kz, results(("chest-xray", "normal")))
    assert [(r.code, r.concept) for r in verdict.reasons] == [("missing-test", None)]
    assert "hiv-screening, hiv-confirmation" in verdict.reasons[0].text
    verdict = verdict_for(ru, [r for r in FULL_NEGATIVE_PANEL if r.concept != "drug-screening"])
    assert [(r.code, r.concept) for r in verdict.reasons] == [("missing-test", "drug-screening")]


def test_a_return_examination_is_not_accepted_for_entry(kz: Ruleset) -> None:
    verdict = verdict_for(kz, FULL_NEGATIVE_PANEL, purpose="return")
    assert codes(verdict) == ["purpose-not-accepted"]
    assert not verdict.met


def test_indeterminate_results_are_the_worst_case(kz: Ruleset, ru: Ruleset) -> None:
    only_indeterminate = results(("chest-xray", "normal"), ("hiv-screening", "indeterminate"))
    verdict = verdict_for(kz, only_indeterminate)
    assert [(r.code, r.concept) for r in verdict.reasons] == [
        ("indeterminate-result", "hiv-screening")
    ]
    # Another accepted alternative of the same required test settles it.
    confirmed = [*only_indeterminate, *results(("hiv-confirmation", "negative"))]
    assert verdict_for(kz, confirmed).met
    # A test the ruleset does not require still blocks while it is indeterminate...
    pending = [*FULL_NEGATIVE_PANEL, *results(("tb-naa", "indeterminate"))]
    assert codes(verdict_for(ru, pending)) == ["indeterminate-result"]
    # ...but one it never looks at does not.
    assert verdict_for(ru, [*FULL_NEGATIVE_PANEL, *results(("hbsag", "indeterminate"))]).met
    # An outcome the concept does not define counts as indeterminate.
    odd = results(("chest-xray", "positive"), ("hiv-screening", "negative"))
    assert codes(verdict_for(kz, odd)) == ["indeterminate-result"]


def test_validity_runs_from_the_earliest_required_test(kz: Ruleset) -> None:
    found = [
        Result("chest-xray", "normal", EXAM - timedelta(days=10)),
        Result("hiv-screening", "negative", EXAM),
    ]
    verdict = verdict_for(kz, found)
    assert verdict.valid_until == EXAM - timedelta(days=10) + timedelta(days=89)


def test_results_too_old_by_today_have_expired(kz: Ruleset) -> None:
    verdict = verdict_for(kz, FULL_NEGATIVE_PANEL, today=EXAM + timedelta(days=90))
    assert codes(verdict) == ["expired-results"]
    assert verdict_for(kz, FULL_NEGATIVE_PANEL, today=EXAM + timedelta(days=89)).met


def test_an_x_ray_older_than_the_validity_period_cannot_support_a_certificate(
    kz: Ruleset,
) -> None:
    found = [
        Result("chest-xray", "normal", EXAM - timedelta(days=120)),
        Result("hiv-screening", "negative", EXAM),
    ]
    assert codes(verdict_for(kz, found)) == ["expired-results"]


def test_an_administrator_extension_lengthens_validity_ending_in_its_window(
    ruleset_document: Document,
) -> None:
    document = ruleset_document("KZ")
    document["extensions"] = [
        {"from": "2025-05-01", "until": "2025-06-30", "extra_days": 30, "reason": "Emergency"},
        {"from": "2025-05-20", "until": "2025-06-10", "extra_days": 14, "reason": "Overlap"},
        {"from": "2025-09-01", "until": "2025-09-30", "extra_days": 60, "reason": "Later"},
    ]
    ruleset = load_ruleset(document)
    verdict = verdict_for(ruleset, FULL_NEGATIVE_PANEL)
    # Unextended end 2025-05-31 falls in both windows: the larger extension counts, once.
    assert verdict.valid_until == date(2025, 5, 31) + timedelta(days=30)
    # An extension also keeps a certificate issuable after its unextended end.
    late = verdict_for(ruleset, FULL_NEGATIVE_PANEL, today=date(2025, 6, 15))
    assert late.met and late.valid_until == date(2025, 6, 30)
    outside = verdict_for(
        ruleset,
        results(*[(r.concept, r.outcome) for r in FULL_NEGATIVE_PANEL], on=date(2025, 1, 2)),
        examination_date=date(2025, 1, 2),
        today=date(2025, 1, 5),
    )
    assert outside.valid_until == date(2025, 1, 2) + timedelta(days=89)


def test_a_ruleset_applies_only_to_examinations_in_its_period(kz: Ruleset) -> None:
    old = results(*[(r.concept, r.outcome) for r in FULL_NEGATIVE_PANEL], on=date(2024, 12, 30))
    verdict = verdict_for(kz, old, examination_date=date(2024, 12, 30), today=date(2025, 1, 2))
    assert codes(verdict) == ["ruleset-not-in-force"]


def test_future_dated_results_and_impossible_birth_dates_are_refused(kz: Ruleset) -> None:
    future = [*FULL_NEGATIVE_PANEL, Result("tb-naa", "negative", TODAY + timedelta(days=1))]
    assert "future-result" in codes(verdict_for(kz, future))
    unborn = verdict_for(kz, FULL_NEGATIVE_PANEL, birth_date=EXAM + timedelta(days=1))
    assert "invalid-birth-date" in codes(unborn)


def test_an_age_rule_replaces_the_required_tests_for_children(
    ruleset_document: Document,
) -> None:
    document = ruleset_document("KZ")
    document["age_rules"] = [
        {
            "below_age": 15,
            "required_tests": [
                {"key": "tuberculosis-screening", "any_of": ["igra", "chest-xray"], "note": "x"},
                {"key": "hiv-test", "any_of": ["hiv-screening"], "note": "x"},
            ],
            "note": "Children are screened with IGRA rather than X-ray.",
        }
    ]
    ruleset = load_ruleset(document)
    child_results = results(("igra", "negative"), ("hiv-screening", "negative"))
    child = verdict_for(ruleset, child_results, birth_date=date(2012, 6, 1))
    assert child.met, child.reasons
    # The day before the 15th birthday the child rule applies; on it, the adult one.
    assert verdict_for(ruleset, child_results, birth_date=date(2010, 3, 4)).met
    adult = verdict_for(ruleset, child_results, birth_date=date(2010, 3, 3))
    assert codes(adult) == ["missing-test"]


@settings(max_examples=150, deadline=None)
@given(
    found=st.lists(
        st.tuples(
            st.sampled_from(CONCEPTS),
            st.integers(min_value=0, max_value=2),
            st.integers(min_value=0, max_value=6),
        ),
        max_size=12,
    ),
    purpose=st.sampled_from(PURPOSES),
)
def test_confirmed_tb_never_yields_a_certificate_and_a_met_verdict_is_currently_valid(
    kz: Ruleset, ru: Ruleset, tm: Ruleset, found: list[tuple[str, int, int]], purpose: str
) -> None:
    generated = [
        Result(concept, OUTCOMES_BY_CONCEPT[concept][index], EXAM + timedelta(days=days))
        for concept, index, days in found
    ]
    for ruleset in (kz, ru, tm):
        verdict = verdict_for(ruleset, generated, purpose=purpose)
        if verdict.met:
            assert verdict.valid_from is not None and verdict.valid_until is not None
            assert verdict.valid_from <= TODAY <= verdict.valid_until
            assert not verdict.reasons
        with_tb = [*generated, Result("tb-naa", "positive", EXAM)]
        assert not verdict_for(ruleset, with_tb, purpose=purpose).met

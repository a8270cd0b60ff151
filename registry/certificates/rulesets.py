"""Destination rulesets (data, not code) and the one function that applies them to an examination.

A ruleset says which tests a destination requires, which findings bar entry, how long a
certificate stays valid and which examination purposes it accepts. The files live in
``fhir_profiles/rulesets/`` (format: ``ruleset.schema.json`` there; decisions: its README).

A verdict's reasons name tests and findings: they are for the examining clinic and the
destination's authority only, never for an employer, who learns "valid certificate" or nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

PURPOSES = ("pre-departure", "return", "in-host", "periodic")
TEST_OUTCOMES = ("positive", "negative", "indeterminate")
CHEST_XRAY_OUTCOMES = ("normal", "abnormal-tb", "abnormal-other")
OUTCOMES_BY_CONCEPT: dict[str, tuple[str, ...]] = {
    "chest-xray": CHEST_XRAY_OUTCOMES,
    **{
        concept: TEST_OUTCOMES
        for concept in (
            "tb-naa",
            "tb-rif-resistance",
            "sputum-smear",
            "sputum-culture",
            "igra",
            "hiv-screening",
            "hiv-confirmation",
            "syphilis-nontreponemal",
            "syphilis-treponemal",
            "hbsag",
            "hcv-ab",
            "leprosy-clinical",
            "drug-screening",
            "psychiatric-exam",
        )
    },
}
CONCEPTS = tuple(OUTCOMES_BY_CONCEPT)
INDETERMINATE = "indeterminate"
MAX_VALIDITY_DAYS = 3650

# Reason codes of a verdict.
RULESET_NOT_IN_FORCE = "ruleset-not-in-force"
PURPOSE_NOT_ACCEPTED = "purpose-not-accepted"
INVALID_BIRTH_DATE = "invalid-birth-date"
MISSING_TEST = "missing-test"
INDETERMINATE_RESULT = "indeterminate-result"
FUTURE_RESULT = "future-result"
DISQUALIFYING_FINDING = "disqualifying-finding"
UNRESOLVED_FINDING = "unresolved-finding"
EXPIRED_RESULTS = "expired-results"


class TestResult(Protocol):
    """One structured result of an examination, as the FHIR engine extracts it."""

    @property
    def concept(self) -> str: ...

    @property
    def outcome(self) -> str: ...

    @property
    def effective(self) -> date: ...


@dataclass(frozen=True)
class LegalBasis:
    """A law or order the ruleset rests on, and what it says for this ruleset."""

    citation: str
    summary: str


@dataclass(frozen=True)
class RequiredTest:
    """A test the destination requires; any one of the alternative concepts satisfies it."""

    key: str
    any_of: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class FindingMatch:
    """A result of ``concept`` with one of ``outcomes``."""

    concept: str
    outcomes: frozenset[str]

    def matches(self, results: Sequence[TestResult]) -> bool:
        """Whether any of the results is of this concept with one of these outcomes."""
        return any(r.concept == self.concept and r.outcome in self.outcomes for r in results)

    def describe(self) -> str:
        """``concept outcome`` for a reason text."""
        return f"{self.concept} {'/'.join(sorted(self.outcomes))}"


@dataclass(frozen=True)
class DisqualifyingFinding:
    """Results that bar entry: all of ``when`` match and none of ``unless`` does.

    A finding with ``unless`` clauses is one that needs follow-up to rule the condition out (an
    X-ray suggestive of TB, a reactive HIV screen): until a clearing result exists the
    examination does not meet the ruleset, reported as an unresolved finding.
    """

    condition: str
    when: tuple[FindingMatch, ...]
    unless: tuple[FindingMatch, ...]
    note: str


@dataclass(frozen=True)
class AgeRule:
    """Required tests that replace the general ones for a holder younger than ``below_age``."""

    below_age: int
    required_tests: tuple[RequiredTest, ...]
    note: str


@dataclass(frozen=True)
class Extension:
    """An administrator-set validity extension for certificates ending within a window."""

    starts: date
    ends: date
    extra_days: int
    reason: str

    def applies_to(self, valid_until: date) -> bool:
        """Whether a certificate whose unextended validity ends on ``valid_until`` is extended."""
        return self.starts <= valid_until <= self.ends


@dataclass(frozen=True)
class Ruleset:
    """One version of a destination's examination requirements."""

    destination: str
    version: int
    title: str
    legal_basis: tuple[LegalBasis, ...]
    effective_from: date
    effective_until: date | None
    accepted_purposes: frozenset[str]
    required_tests: tuple[RequiredTest, ...]
    disqualifying_findings: tuple[DisqualifyingFinding, ...]
    validity_days: int
    age_rules: tuple[AgeRule, ...]
    extensions: tuple[Extension, ...]
    assumptions: tuple[str, ...]
    # whether certificates issued under earlier versions are judged again by this one
    applies_to_issued: bool = False

    def in_force_on(self, day: date) -> bool:
        """Whether this version applies to an examination on ``day``."""
        return self.effective_from <= day and (
            self.effective_until is None or day <= self.effective_until
        )

    def required_tests_at_age(self, age: int) -> tuple[RequiredTest, ...]:
        """The required tests for a holder of ``age`` full years (the narrowest age rule wins)."""
        rules = sorted((r for r in self.age_rules if age < r.below_age), key=lambda r: r.below_age)
        return rules[0].required_tests if rules else self.required_tests

    @property
    def concepts(self) -> frozenset[str]:
        """Every test concept this ruleset looks at: what an authority may see, and no more."""
        found: set[str] = set()
        for required in self.required_tests:
            found.update(required.any_of)
        for rule in self.age_rules:
            for required in rule.required_tests:
                found.update(required.any_of)
        for finding in self.disqualifying_findings:
            found.update(m.concept for m in (*finding.when, *finding.unless))
        return frozenset(found)


@dataclass(frozen=True)
class Reason:
    """Why an examination does not meet a ruleset; clinical, never shown to an employer."""

    code: str
    concept: str | None
    text: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of one examination against one destination's ruleset."""

    destination: str
    ruleset_version: int
    met: bool
    reasons: tuple[Reason, ...]
    valid_from: date | None
    valid_until: date | None


# --- loading -------------------------------------------------------------------------------

_TOP_LEVEL_KEYS = {
    "$schema",
    "destination",
    "version",
    "title",
    "legal_basis",
    "effective_from",
    "effective_until",
    "applies_to_issued",
    "accepted_purposes",
    "required_tests",
    "disqualifying_findings",
    "validity_days",
    "age_rules",
    "extensions",
    "assumptions",
}
_REQUIRED_TOP_LEVEL = _TOP_LEVEL_KEYS - {
    "$schema",
    "effective_until",
    "applies_to_issued",
    "age_rules",
    "extensions",
}
_KEY = re.compile(r"[a-z][a-z0-9-]*")
_FILE_NAME = re.compile(r"(?P<destination>[A-Z]{2})\.v(?P<version>[1-9][0-9]*)\.json")


def _object(value: Any, where: str, *, required: set[str], allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown member {unknown[0]!r}")
    missing = sorted(required - set(value))
    if missing:
        raise ValueError(f"{where}: missing member {missing[0]!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected non-empty text")
    return value


def _integer(value: Any, where: str, *, minimum: int, maximum: int) -> int:
    # bool is an int in Python but never a count in a ruleset.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer")
    if not minimum <= value <= maximum:
        raise ValueError(f"{where}: expected an integer from {minimum} to {maximum}")
    return value


def _day(value: Any, where: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{where}: expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {value!r} is not a calendar date") from exc


def _list(value: Any, where: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a JSON array")
    if non_empty and not value:
        raise ValueError(f"{where}: expected at least one item")
    return value


def _concept(value: Any, where: str) -> str:
    if value not in OUTCOMES_BY_CONCEPT:
        raise ValueError(f"{where}: unknown test concept {value!r}")
    return str(value)


def _required_tests(value: Any, where: str) -> tuple[RequiredTest, ...]:
    tests = []
    for i, item in enumerate(_list(value, where, non_empty=True)):
        at = f"{where}[{i}]"
        members = {"key", "any_of", "note"}
        raw = _object(item, at, required=members, allowed=members)
        key = _text(raw["key"], f"{at}.key")
        if not _KEY.fullmatch(key):
            raise ValueError(f"{at}.key: use lower-case letters, digits and hyphens")
        any_of = tuple(
            _concept(c, f"{at}.any_of[{j}]")
            for j, c in enumerate(_list(raw["any_of"], f"{at}.any_of", non_empty=True))
        )
        if len(set(any_of)) != len(any_of):
            raise ValueError(f"{at}.any_of: a concept is listed twice")
        tests.append(RequiredTest(key=key, any_of=any_of, note=_text(raw["note"], f"{at}.note")))
    keys = [t.key for t in tests]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{where}: two required tests share a key")
    return tuple(tests)


def _matches(value: Any, where: str, *, non_empty: bool) -> tuple[FindingMatch, ...]:
    matches = []
    for i, item in enumerate(_list(value, where, non_empty=non_empty)):
        at = f"{where}[{i}]"
        raw = _object(item, at, required={"concept", "outcomes"}, allowed={"concept", "outcomes"})
        concept = _concept(raw["concept"], f"{at}.concept")
        outcomes = _list(raw["outcomes"], f"{at}.outcomes", non_empty=True)
        for j, outcome in enumerate(outcomes):
            if outcome not in OUTCOMES_BY_CONCEPT[concept]:
                raise ValueError(f"{at}.outcomes[{j}]: {outcome!r} is not an outcome of {concept}")
        matches.append(FindingMatch(concept=concept, outcomes=frozenset(outcomes)))
    return tuple(matches)


def _findings(value: Any, where: str) -> tuple[DisqualifyingFinding, ...]:
    findings = []
    for i, item in enumerate(_list(value, where)):
        at = f"{where}[{i}]"
        raw = _object(
            item,
            at,
            required={"condition", "when", "note"},
            allowed={"condition", "when", "unless", "note"},
        )
        condition = _text(raw["condition"], f"{at}.condition")
        if not _KEY.fullmatch(condition):
            raise ValueError(f"{at}.condition: use lower-case letters, digits and hyphens")
        findings.append(
            DisqualifyingFinding(
                condition=condition,
                when=_matches(raw["when"], f"{at}.when", non_empty=True),
                unless=_matches(raw.get("unless", []), f"{at}.unless", non_empty=False),
                note=_text(raw["note"], f"{at}.note"),
            )
        )
    return tuple(findings)


def load_ruleset(document: Mapping[str, Any]) -> Ruleset:
    """A Ruleset from its JSON document; raises ValueError naming the first problem found."""
    raw = _object(document, "ruleset", required=_REQUIRED_TOP_LEVEL, allowed=_TOP_LEVEL_KEYS)
    destination = raw["destination"]
    if not isinstance(destination, str) or not re.fullmatch(r"[A-Z]{2}", destination):
        raise ValueError("destination: expected an ISO 3166-1 alpha-2 code such as 'KZ'")

    legal_basis = []
    for i, item in enumerate(_list(raw["legal_basis"], "legal_basis", non_empty=True)):
        at = f"legal_basis[{i}]"
        entry = _object(item, at, required={"citation", "summary"}, allowed={"citation", "summary"})
        legal_basis.append(
            LegalBasis(
                citation=_text(entry["citation"], f"{at}.citation"),
                summary=_text(entry["summary"], f"{at}.summary"),
            )
        )

    effective_from = _day(raw["effective_from"], "effective_from")
    effective_until = None
    if raw.get("effective_until") is not None:
        effective_until = _day(raw["effective_until"], "effective_until")
        if effective_until < effective_from:
            raise ValueError("effective_until: before effective_from")

    purposes = _list(raw["accepted_purposes"], "accepted_purposes", non_empty=True)
    for i, purpose in enumerate(purposes):
        if purpose not in PURPOSES:
            raise ValueError(f"accepted_purposes[{i}]: unknown purpose {purpose!r}")

    age_rules = []
    for i, item in enumerate(_list(raw.get("age_rules", []), "age_rules")):
        at = f"age_rules[{i}]"
        entry = _object(
            item,
            at,
            required={"below_age", "required_tests", "note"},
            allowed={"below_age", "required_tests", "note"},
        )
        age_rules.append(
            AgeRule(
                below_age=_integer(entry["below_age"], f"{at}.below_age", minimum=1, maximum=30),
                required_tests=_required_tests(entry["required_tests"], f"{at}.required_tests"),
                note=_text(entry["note"], f"{at}.note"),
            )
        )
    if len({r.below_age for r in age_rules}) != len(age_rules):
        raise ValueError("age_rules: two rules share a below_age")

    extensions = []
    for i, item in enumerate(_list(raw.get("extensions", []), "extensions")):
        at = f"extensions[{i}]"
        members = {"from", "until", "extra_days", "reason"}
        entry = _object(item, at, required=members, allowed=members)
        extension = Extension(
            starts=_day(entry["from"], f"{at}.from"),
            ends=_day(entry["until"], f"{at}.until"),
            extra_days=_integer(entry["extra_days"], f"{at}.extra_days", minimum=1, maximum=365),
            reason=_text(entry["reason"], f"{at}.reason"),
        )
        if extension.ends < extension.starts:
            raise ValueError(f"{at}.until: before from")
        extensions.append(extension)

    return Ruleset(
        destination=destination,
        version=_integer(raw["version"], "version", minimum=1, maximum=10_000),
        title=_text(raw["title"], "title"),
        legal_basis=tuple(legal_basis),
        effective_from=effective_from,
        effective_until=effective_until,
        accepted_purposes=frozenset(purposes),
        required_tests=_required_tests(raw["required_tests"], "required_tests"),
        disqualifying_findings=_findings(raw["disqualifying_findings"], "disqualifying_findings"),
        validity_days=_integer(
            raw["validity_days"], "validity_days", minimum=1, maximum=MAX_VALIDITY_DAYS
        ),
        age_rules=tuple(age_rules),
        extensions=tuple(extensions),
        assumptions=tuple(
            _text(a, f"assumptions[{i}]")
            for i, a in enumerate(_list(raw["assumptions"], "assumptions"))
        ),
        applies_to_issued=_flag(raw.get("applies_to_issued", False), "applies_to_issued"),
    )


def _flag(value: object, at: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{at}: expected true or false")
    return value


def load_rulesets(directory: Path | str) -> tuple[Ruleset, ...]:
    """Every ``<DEST>.v<N>.json`` ruleset in a directory, sorted by destination and version."""
    rulesets = []
    for path in sorted(Path(directory).glob("*.json")):
        named = _FILE_NAME.fullmatch(path.name)
        if named is None:
            continue  # the schema and any other JSON that is not a ruleset
        try:
            ruleset = load_ruleset(json.loads(path.read_text("utf-8")))
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from exc
        if (ruleset.destination, ruleset.version) != (
            named["destination"],
            int(named["version"]),
        ):
            raise ValueError(f"{path.name}: holds {ruleset.destination} version {ruleset.version}")
        rulesets.append(ruleset)
    return tuple(sorted(rulesets, key=lambda r: (r.destination, r.version)))


def ruleset_in_force(rulesets: Iterable[Ruleset], *, destination: str, on: date) -> Ruleset | None:
    """The highest version of a destination's ruleset in force on a day, if any."""
    candidates = [r for r in rulesets if r.destination == destination and r.in_force_on(on)]
    return max(candidates, key=lambda r: r.version, default=None)


# --- evaluation ----------------------------------------------------------------------------


def _age(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _determinate(result: TestResult) -> bool:
    # An outcome the concept does not define is treated like an indeterminate one: worst case.
    return result.outcome != INDETERMINATE and result.outcome in OUTCOMES_BY_CONCEPT.get(
        result.concept, ()
    )


def evaluate(
    ruleset: Ruleset,
    *,
    purpose: str,
    results: Iterable[TestResult],
    examination_date: date,
    birth_date: date,
    today: date | None = None,
) -> Verdict:
    """Whether an examination meets a destination's ruleset, why not, and the validity if so.

    Worst case throughout: a required test whose results are all indeterminate is not met; an
    indeterminate result of any test the ruleset looks at blocks the verdict unless another
    accepted alternative of the same required test has a determinate result; a repeat test
    clears an indeterminate result, never a positive one.
    """
    today = today or date.today()
    concepts = ruleset.concepts
    considered = [r for r in results if r.concept in concepts]
    reasons: list[Reason] = []

    if not ruleset.in_force_on(examination_date):
        reasons.append(
            Reason(
                RULESET_NOT_IN_FORCE,
                None,
                f"{ruleset.destination} ruleset version {ruleset.version} does not apply to an "
                f"examination on {examination_date.isoformat()}",
            )
        )
    if purpose not in ruleset.accepted_purposes:
        reasons.append(
            Reason(
                PURPOSE_NOT_ACCEPTED,
                None,
                f"{ruleset.destination} does not accept a {purpose!r} examination",
            )
        )
    if birth_date > examination_date:
        reasons.append(Reason(INVALID_BIRTH_DATE, None, "the birth date is after the examination"))
    for result in sorted(considered, key=lambda r: (r.concept, r.effective)):
        if result.effective > today:
            reasons.append(
                Reason(
                    FUTURE_RESULT,
                    result.concept,
                    f"{result.concept} is dated {result.effective.isoformat()}, in the future",
                )
            )

    by_concept: dict[str, list[TestResult]] = {}
    for result in considered:
        by_concept.setdefault(result.concept, []).append(result)

    # Required tests, and the earliest date among the results that satisfy them.
    satisfied_concepts: set[str] = set()
    earliest: date | None = None
    for required in ruleset.required_tests_at_age(_age(birth_date, examination_date)):
        present = [r for c in required.any_of for r in by_concept.get(c, [])]
        determinate = [r for r in present if _determinate(r)]
        if not present:
            reasons.append(
                Reason(
                    MISSING_TEST,
                    required.any_of[0] if len(required.any_of) == 1 else None,
                    f"{required.key}: no result for any of {', '.join(required.any_of)}",
                )
            )
        elif determinate:
            satisfied_concepts.update(required.any_of)
            first = min(r.effective for r in determinate)
            earliest = first if earliest is None else min(earliest, first)

    for concept in sorted(by_concept):
        if concept in satisfied_concepts:
            continue
        if not any(_determinate(r) for r in by_concept[concept]):
            reasons.append(
                Reason(INDETERMINATE_RESULT, concept, f"{concept} has no determinate result")
            )

    disqualified = set()
    for finding in ruleset.disqualifying_findings:
        if finding.unless or not all(m.matches(considered) for m in finding.when):
            continue
        disqualified.add(finding.condition)
        reasons.append(
            Reason(
                DISQUALIFYING_FINDING,
                finding.when[0].concept,
                f"{finding.condition}: {' and '.join(m.describe() for m in finding.when)}",
            )
        )
    for finding in ruleset.disqualifying_findings:
        if not finding.unless or finding.condition in disqualified:
            continue
        if all(m.matches(considered) for m in finding.when) and not any(
            m.matches(considered) for m in finding.unless
        ):
            reasons.append(
                Reason(
                    UNRESOLVED_FINDING,
                    finding.when[0].concept,
                    f"{finding.condition}: {' and '.join(m.describe() for m in finding.when)} "
                    f"needs one of {', '.join(m.describe() for m in finding.unless)}",
                )
            )

    valid_from = valid_until = None
    if earliest is not None:
        # Day one of validity is the earliest required test; valid_until is the last valid day.
        base_until = earliest + timedelta(days=ruleset.validity_days - 1)
        extra = max(
            (e.extra_days for e in ruleset.extensions if e.applies_to(base_until)), default=0
        )
        valid_until = base_until + timedelta(days=extra)
        # A certificate cannot be valid before the last result it rests on existed.
        valid_from = max([examination_date, *(r.effective for r in considered)])
        if valid_until < today or valid_until < valid_from:
            reasons.append(
                Reason(
                    EXPIRED_RESULTS,
                    None,
                    f"results from {earliest.isoformat()} were valid until "
                    f"{valid_until.isoformat()}",
                )
            )

    met = not reasons
    return Verdict(
        destination=ruleset.destination,
        ruleset_version=ruleset.version,
        met=met,
        reasons=tuple(reasons),
        valid_from=valid_from if met else None,
        valid_until=valid_until if met else None,
    )

"""Test results (Observations) and referrals (ServiceRequests)."""

from __future__ import annotations

import datetime

from registry.fhir import models
from registry.fhir.bundle_index import BundleIndex
from registry.fhir.context import CheckContext, Entry, quoted
from registry.fhir.record import ReferralData, TestResultData
from registry.fhir.terminology import CLINIC_ID, CLINIC_SYSTEM, LOINC, REFERRAL_REASON_VS

OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
# FHIR core required bindings that fhir.resources does not enforce.
REQUEST_STATUSES = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
REQUEST_INTENTS = frozenset(
    {
        "proposal",
        "plan",
        "directive",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    }
)
# Specimens may be taken at an earlier visit; documented in fhir_profiles/README.md.
RESULT_MAX_DAYS_BEFORE_EXAMINATION = 90
_OTHER_EFFECTIVE = ("effectivePeriod", "effectiveInstant", "effectiveTiming")


def check_results(
    ctx: CheckContext,
    index: BundleIndex,
    examination_date: datetime.date | None,
    document_date: datetime.date | None,
) -> list[TestResultData]:
    """Check every Observation against the test-result profile; extract the results."""
    if not index.of_type("Observation"):
        ctx.fail("required", "Bundle.entry", "an examination record needs at least one test result")
    results = []
    for entry in index.of_type("Observation"):
        subject = index.target(entry, entry.resource.subject, "subject", "Patient", required=True)
        result = _result(ctx, entry, examination_date, document_date)
        if result is not None and subject is not None:
            results.append(result)
    return results


def check_referrals(ctx: CheckContext, index: BundleIndex) -> list[ReferralData]:
    """Check every ServiceRequest against the referral profile; extract the referrals."""
    referrals = []
    for entry in index.of_type("ServiceRequest"):
        referral = _referral(ctx, entry)
        if referral is not None:
            referrals.append(referral)
    return referrals


def _result(
    ctx: CheckContext,
    entry: Entry,
    examination_date: datetime.date | None,
    document_date: datetime.date | None,
) -> TestResultData | None:
    observation: models.Observation = entry.resource
    loc = entry.loc
    ok = True
    if observation.status not in OBSERVATION_STATUSES:
        status = quoted(observation.status)
        problem = f"Observation.status must be final, amended or corrected, not {status}"
        ctx.fail("value", f"{loc}.status", problem)
        ok = False

    matches = {
        (concept.key, coding.code if coding.system == LOINC and coding.code else "")
        for coding in observation.code.coding or []
        if (concept := ctx.terms.concept_for(coding.system, coding.code)) is not None
    }
    keys = {key for key, _loinc in matches}
    if len(keys) != 1:
        problem = "is not in the exam-test-code value set" if not keys else "names two tests"
        ctx.fail("code-invalid", f"{loc}.code", f"Observation.code {problem}")
        return None
    concept = ctx.terms.concepts[keys.pop()]
    loinc = max(code for _key, code in matches)

    effective = _effective(ctx, observation, loc, examination_date, document_date)
    outcome = _outcome(ctx, observation, loc, concept.result_value_set)
    if not ok or effective is None or outcome is None:
        return None
    return TestResultData(concept=concept.key, loinc=loinc, outcome=outcome, effective=effective)


def _effective(
    ctx: CheckContext,
    observation: models.Observation,
    loc: str,
    examination_date: datetime.date | None,
    document_date: datetime.date | None,
) -> datetime.date | None:
    where = f"{loc}.effectiveDateTime"
    if observation.effectiveDateTime is None:
        other = next((name for name in _OTHER_EFFECTIVE if getattr(observation, name)), None)
        hint = f" ({other} is not accepted)" if other else ""
        ctx.fail("required", where, f"Observation.effectiveDateTime is required{hint}")
        return None
    effective = ctx.full_date(observation.effectiveDateTime, where, "Observation.effectiveDateTime")
    if effective is None:
        return None
    if document_date is not None and effective > document_date:
        ctx.fail("invariant", where, "the result is dated after the document")
        return None
    limit = RESULT_MAX_DAYS_BEFORE_EXAMINATION
    if examination_date is not None and (examination_date - effective).days > limit:
        ctx.fail(
            "business-rule", where, f"the result is over {limit} days older than the examination"
        )
        return None
    return effective


def _outcome(
    ctx: CheckContext, observation: models.Observation, loc: str, value_set: str
) -> str | None:
    where = f"{loc}.valueCodeableConcept"
    value = observation.valueCodeableConcept
    if value is None:
        other = next(
            (
                name
                for name in type(observation).model_fields
                if name.startswith("value") and getattr(observation, name) is not None
            ),
            None,
        )
        hint = f" ({other} is not accepted)" if other else ""
        ctx.fail("required", where, f"Observation.valueCodeableConcept is required{hint}")
        return None
    outcomes = {
        outcome
        for coding in value.coding or []
        if ctx.terms.in_value_set(value_set, coding.system, coding.code)
        and (outcome := ctx.terms.outcome(coding.system, coding.code)) is not None
    }
    if len(outcomes) != 1:
        problem = (
            f"has no coding from {value_set}" if not outcomes else "codes contradicting results"
        )
        ctx.fail("code-invalid", where, f"the result {problem}")
        return None
    return outcomes.pop()


def _referral(ctx: CheckContext, entry: Entry) -> ReferralData | None:
    request: models.ServiceRequest = entry.resource
    loc = entry.loc
    ok = True
    if request.status not in REQUEST_STATUSES:
        ctx.fail(
            "code-invalid", f"{loc}.status", f"{quoted(request.status)} is not a request status"
        )
        ok = False
    if request.intent not in REQUEST_INTENTS:
        ctx.fail(
            "code-invalid", f"{loc}.intent", f"{quoted(request.intent)} is not a request intent"
        )
        ok = False
    reasons = ctx.codes_in(request.reasonCode or [], REFERRAL_REASON_VS)
    if len(reasons) != 1:
        ctx.fail("code-invalid", f"{loc}.reasonCode", "a referral needs one referral-reason code")
        ok = False
    target_facility: str | None = None
    for index, performer in enumerate(request.performer or []):
        identifier = performer.identifier
        if performer.reference is not None or identifier is None:
            continue  # references are checked by the bundle index
        value = (identifier.value or "").strip()
        if identifier.system != CLINIC_SYSTEM or not CLINIC_ID.match(value):
            problem = f"name the target facility by its registry id (system {CLINIC_SYSTEM})"
            ctx.fail("value", f"{loc}.performer[{index}].identifier", problem)
            ok = False
        elif target_facility is None:
            target_facility = value
    notes = [note.text.strip() for note in request.note or [] if note.text and note.text.strip()]
    if not ok:
        return None
    return ReferralData(
        reason=reasons[0], target_facility=target_facility, note=next(iter(notes), None)
    )

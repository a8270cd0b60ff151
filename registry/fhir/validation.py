"""Parse and validate a submitted examination bundle into an ExaminationRecord.

Three stages, each collecting every problem it finds before stopping: the raw JSON (encoding,
nesting, entry count, resource types), the FHIR R4 structure (fhir.resources R4B models), and
our profiles (profile.py). Whatever the input, the only exception that leaves is InvalidResource.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

from registry.errors import InvalidResource, Issue
from registry.fhir import models
from registry.fhir.bundle import load_json, strip_signature
from registry.fhir.bundle_index import ALLOWED_RESOURCE_TYPES
from registry.fhir.context import quoted
from registry.fhir.profile import check_examination
from registry.fhir.record import ExaminationRecord
from registry.fhir.terminology import Terminology, load_terminology

__all__ = ["parse_examination_bundle", "strip_signature"]

logger = logging.getLogger(__name__)

MAX_ISSUES = 100
# Entries a document must not carry: they belong to transactions and search results.
_FOREIGN_ENTRY_ELEMENTS = ("request", "response", "search")


def parse_examination_bundle(
    raw: bytes | str | dict[str, Any],
    *,
    today: datetime.date | None = None,
    max_depth: int = 64,
    max_entries: int = 500,
    profiles_dir: Path | None = None,
) -> ExaminationRecord:
    """Parse a submitted examination Bundle and enforce our profiles; raise InvalidResource."""
    # Outside the safety net: a broken fhir_profiles/ is a deployment fault, not a bad request.
    terms = load_terminology(profiles_dir)
    try:
        return _parse(raw, terms, today=today, max_depth=max_depth, max_entries=max_entries)
    except InvalidResource as exc:
        raise _capped(exc.issues) from None
    except Exception:
        # A bug of ours must still answer 422 rather than 500, but it is logged to be fixed.
        logger.exception("unexpected failure while validating an examination bundle")
        failure = Issue("exception", "the bundle could not be validated", None)
        raise InvalidResource(issues=[failure]) from None


def _parse(
    raw: bytes | str | dict[str, Any],
    terms: Terminology,
    *,
    today: datetime.date | None,
    max_depth: int,
    max_entries: int,
) -> ExaminationRecord:
    document = load_json(raw, max_depth=max_depth)
    sanitised, issues = _screen(document, max_entries)
    if sanitised is None:
        raise InvalidResource(issues=issues)
    try:
        bundle = models.parse_bundle(sanitised)
    except models.StructureError as exc:
        issues.extend(_structure_issue(problem) for problem in exc.problems)
        raise InvalidResource(issues=issues) from None
    if issues:
        raise InvalidResource(issues=issues)
    return check_examination(bundle, document, terms, today or _latest_local_date())


def _screen(
    document: dict[str, Any], max_entries: int
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """Check what the models cannot report well; return a copy safe to hand to them."""
    issues: list[Issue] = []
    resource_type = document.get("resourceType")
    if resource_type != "Bundle":
        problem = f"expected a Bundle, got resourceType {quoted(resource_type)}"
        return None, [Issue("invalid", problem, "Bundle.resourceType")]
    entries = document.get("entry")
    if entries is None:
        return document, issues
    if not isinstance(entries, list):
        return None, [Issue("structure", "Bundle.entry must be an array", "Bundle.entry")]
    if len(entries) > max_entries:
        problem = f"{len(entries)} entries; at most {max_entries} are accepted"
        return None, [Issue("too-costly", problem, "Bundle.entry")]

    screened: list[Any] = []
    for index, entry in enumerate(entries):
        loc = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            screened.append(entry)  # the models report the wrong type with its location
            continue
        entry = dict(entry)
        for element in _FOREIGN_ENTRY_ELEMENTS:
            if element in entry:
                problem = f"entry.{element} is not allowed in a document"
                issues.append(Issue("not-supported", problem, f"{loc}.{element}"))
                del entry[element]
        resource = entry.get("resource")
        if isinstance(resource, dict):
            resource_issue = _resource_problem(resource, f"{loc}.resource")
            if resource_issue is not None:
                issues.append(resource_issue)
                del entry["resource"]
            elif "contained" in resource:
                problem = "examination records use no contained resources"
                issues.append(Issue("not-supported", problem, f"{loc}.resource.contained"))
                entry["resource"] = {k: v for k, v in resource.items() if k != "contained"}
        screened.append(entry)
    return {**document, "entry": screened}, issues


def _resource_problem(resource: dict[str, Any], loc: str) -> Issue | None:
    # fhir.resources fails with a bare KeyError on an unknown resourceType, losing the location.
    resource_type = resource.get("resourceType")
    where = f"{loc}.resourceType"
    if not isinstance(resource_type, str):
        return Issue("required", "resource.resourceType is required and must be a string", where)
    if resource_type in ALLOWED_RESOURCE_TYPES:
        return None
    if models.is_resource_type(resource_type):
        problem = f"{resource_type} is not part of an examination record"
        return Issue("not-supported", problem, where)
    return Issue("invalid", f"unknown resourceType {quoted(resource_type)}", where)


def _structure_issue(problem: models.StructureProblem) -> Issue:
    location = "Bundle" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.path
    )
    return Issue(code=problem.code, diagnostics=problem.message, location=location)


def _latest_local_date() -> datetime.date:
    # Clinics write local dates; nowhere on Earth is more than 14 hours ahead of UTC.
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=14)).date()


def _capped(issues: list[Issue]) -> InvalidResource:
    if len(issues) <= MAX_ISSUES:
        return InvalidResource(issues=list(issues))
    rest = Issue("too-costly", f"{len(issues) - MAX_ISSUES} further problems not listed", None)
    return InvalidResource(issues=[*issues[:MAX_ISSUES], rest])

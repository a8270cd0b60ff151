"""State shared by the profile checks: the entries, the issues found so far, and date rules."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.errors import Issue
from registry.fhir import models
from registry.fhir.terminology import Terminology


@dataclass
class Entry:
    """One bundle entry that carries a resource."""

    index: int
    resource: Any  # a models.* resource
    resource_type: str
    full_url: str | None

    @property
    def loc(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass
class CheckContext:
    """What every check needs: terminology, the clock, the collected issues."""

    terms: Terminology
    today: datetime.date
    issues: list[Issue] = field(default_factory=list)

    def fail(self, code: str, location: str | None, diagnostics: str) -> None:
        """Record one problem (FHIR issue-type code, FHIRPath-like location, human text)."""
        self.issues.append(Issue(code=code, diagnostics=diagnostics, location=location))

    def full_date(
        self, value: object, loc: str, label: str, *, required: bool = True
    ) -> datetime.date | None:
        """A date or date-time giving at least a full day, not in the future; else an issue."""
        if value is None:
            if required:
                self.fail("required", loc, f"{label} is required")
            return None
        day = as_date(value)
        if day is None:
            self.fail("value", loc, f"{label} must give at least a full date (YYYY-MM-DD)")
            return None
        if day > self.today:
            self.fail("invariant", loc, f"{label} ({day.isoformat()}) is in the future")
            return None
        return day

    def codes_in(
        self, concepts: Sequence[models.CodeableConcept | None], value_set: str
    ) -> list[str]:
        """The codes of these CodeableConcepts that belong to the value set."""
        return [
            coding.code
            for concept in concepts
            if concept is not None
            for coding in concept.coding or []
            if coding.code and self.terms.in_value_set(value_set, coding.system, coding.code)
        ]


def quoted(value: object, limit: int = 60) -> str:
    """repr() of a submitted value for a diagnostic, cut short: inputs may be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_date(value: object) -> datetime.date | None:
    """The calendar date as the clinic wrote it (its local time); None for partial dates."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return None

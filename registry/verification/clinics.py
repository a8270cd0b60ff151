"""A clinic's accreditation as a verifier reports it, by the registry's own accreditation rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from registry.accreditation.models import Clinic, ClinicStatusEvent
from registry.accreditation.status import accreditation_at, accredited_on
from registry.verification.verdict import Accreditation


def detached_clinic(
    *,
    clinic_id: str,
    name: str,
    country: str,
    status: str,
    accredited_from: date,
    accredited_until: date | None,
    history: Iterable[tuple[int, str, datetime, datetime]],
) -> Clinic:
    """A clinic record outside any session (from a query's rows or a trust list), so that
    ``accreditation_at`` and ``accredited_on`` apply to it unchanged."""
    return Clinic(
        id=clinic_id,
        name=name,
        country=country,
        status=status,
        accredited_from=accredited_from,
        accredited_until=accredited_until,
        purposes=[],
        history=[
            ClinicStatusEvent(
                id=event_id, status=event, effective_at=effective, recorded_at=recorded
            )
            for event_id, event, effective, recorded in history
        ],
        keys=[],
    )


def standing_on(clinic: Clinic, day: date) -> str:
    """The clinic's accreditation on a day: ``active`` if it was accredited at any moment of it."""
    if accredited_on(clinic, day):
        return "active"
    return accreditation_at(clinic, datetime.combine(day, time.max, UTC))


def standing(clinic: Clinic, *, examined_on: date | None, now: datetime) -> Accreditation:
    """The clinic's accreditation on the examination date and now."""
    return Accreditation(
        at_examination=standing_on(clinic, examined_on) if examined_on else None,
        now=accreditation_at(clinic, now),
    )

"""Referrals: made by examinations, followed up by the programme facility, counted when completed.

A referral is ``requested`` when its examination is stored; the facility it names (a clinic
client) moves it to ``accepted``, ``completed`` or ``lost-to-follow-up``. Referrals open longer
than ``Settings.referral_overdue_days`` are overdue. Completions move the surveillance count
of the examination's current version in the same transaction (the ReferralsCompleted event).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.db import UnitOfWork, utcnow
from registry.errors import Conflict, NotFound
from registry.events import ReferralsCompleted, VersionRetired, VersionStored
from registry.examinations.models import Examination, Person
from registry.examinations.persons import open_identity
from registry.fhir import ReferralData
from registry.referrals.models import OPEN_STATUSES, Referral

# Where a facility may move a referral; ``completed`` is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "completed", "lost-to-follow-up"}),
    "accepted": frozenset({"completed", "lost-to-follow-up"}),
    # the person turned up after all
    "lost-to-follow-up": frozenset({"accepted", "completed"}),
}
FACILITY_STATUSES = ("accepted", "completed", "lost-to-follow-up")
DIRECTIONS = ("incoming", "outgoing")


# -- made by examinations (in the examination's transaction) -----------------------------------


def _live(session: Session, examination_id: str) -> list[Referral]:
    return list(
        session.scalars(
            select(Referral)
            .where(
                Referral.examination_id == examination_id,
                Referral.status.not_in(("revoked", "entered-in-error")),
            )
            .order_by(Referral.ordinal, Referral.id)
        )
    )


def record_referrals(
    session: Session,
    *,
    examination: Examination,
    referrals: list[ReferralData],
    actor: str,
    now: datetime,
    amending: bool,
) -> None:
    """Create the version's referrals; on an amendment keep those that survive, with their
    follow-up, and revoke the rest."""
    existing = _live(session, examination.id) if amending else []
    kept: list[Referral] = []
    for ordinal, data in enumerate(referrals):
        twin = next(
            (
                r
                for r in existing
                if r not in kept
                and (r.reason, r.facility_id) == (data.reason, data.target_facility)
            ),
            None,
        )
        if twin is not None:
            twin.ordinal = ordinal
            twin.person_id = examination.person_id
            kept.append(twin)
            continue
        session.add(
            Referral(
                id=f"RF{secrets.token_hex(12)}",
                examination_id=examination.id,
                person_id=examination.person_id,
                referring_clinic_id=examination.clinic_id,
                facility_id=data.target_facility,
                reason=data.reason,
                ordinal=ordinal,
                status="requested",
                created_at=now,
                status_changed_at=now,
                status_changed_by=actor,
            )
        )
    for dropped in existing:
        if dropped not in kept:
            dropped.status = "revoked"
            dropped.status_changed_at = now
            dropped.status_changed_by = actor


def withdraw_referrals(session: Session, *, examination_id: str, actor: str, now: datetime) -> None:
    """An examination entered in error takes its referrals with it."""
    for referral in _live(session, examination_id):
        referral.status = "entered-in-error"
        referral.status_changed_at = now
        referral.status_changed_by = actor


# -- followed up by the facility -----------------------------------------------------------


@dataclass(frozen=True)
class ReferralView:
    """A referral as its facility and its referring clinic see it."""

    referral: Referral
    overdue: bool
    open_days: int | None
    person: dict[str, object] | None = None  # name, birth date, document hint: single reads only


def _view(
    referral: Referral, *, overdue_days: int, now: datetime, person: dict[str, object] | None
) -> ReferralView:
    open_days = (now - referral.created_at).days if referral.status in OPEN_STATUSES else None
    return ReferralView(
        referral=referral,
        overdue=open_days is not None and open_days >= overdue_days,
        open_days=open_days,
        person=person,
    )


def _visible(session: Session, principal: Principal, referral_id: str) -> Referral:
    referral = session.get(Referral, referral_id)
    # a referral of other clinics answers as if it did not exist
    if referral is None or principal.clinic_id not in (
        referral.facility_id,
        referral.referring_clinic_id,
    ):
        raise NotFound(f"no referral {referral_id!r}")
    return referral


def list_referrals(
    uow: UnitOfWork,
    *,
    principal: Principal,
    direction: str = "incoming",
    status: str | None = None,
    overdue: bool | None = None,
    overdue_days: int,
    now: datetime | None = None,
) -> list[ReferralView]:
    """Referrals to the calling facility (incoming) or made by the calling clinic (outgoing)."""
    authorize(principal, "referral.read", clinic_id=principal.clinic_id)
    now = now or utcnow()
    column = Referral.facility_id if direction == "incoming" else Referral.referring_clinic_id
    query = select(Referral).where(column == principal.clinic_id)
    if status is not None:
        query = query.where(Referral.status == status)
    threshold = now - timedelta(days=overdue_days)
    if overdue is True:
        query = query.where(Referral.status.in_(OPEN_STATUSES), Referral.created_at <= threshold)
    elif overdue is False:
        query = query.where(
            (Referral.status.not_in(OPEN_STATUSES)) | (Referral.created_at > threshold)
        )
    rows = uow.session.scalars(
        query.order_by(Referral.created_at, Referral.examination_id, Referral.ordinal, Referral.id)
    )
    return [_view(r, overdue_days=overdue_days, now=now, person=None) for r in rows]


def get_referral(
    uow: UnitOfWork,
    *,
    principal: Principal,
    referral_id: str,
    overdue_days: int,
    now: datetime | None = None,
) -> ReferralView:
    """One referral with the person's name, birth date and document hint; the read is audited."""
    cipher = uow.cipher
    authorize(principal, "referral.read")
    now = now or utcnow()
    session = uow.session
    referral = _visible(session, principal, referral_id)
    person = session.get(Person, referral.person_id)
    assert person is not None
    identity = open_identity(person, cipher)
    audit(
        session,
        actor=principal,
        action="referral.read",
        object_type="Referral",
        object_id=referral.id,
        purpose_of_use="continuity-of-care",
        at=now,
    )
    return _view(
        referral,
        overdue_days=overdue_days,
        now=now,
        person={
            "name": identity.display_name,
            "birth_date": identity.birth_date,
            "sex": identity.sex,
            "document_hint": identity.document_hint,
        },
    )


def update_status(
    uow: UnitOfWork,
    *,
    principal: Principal,
    referral_id: str,
    status: str,
    overdue_days: int,
    now: datetime | None = None,
) -> ReferralView:
    """The facility records what became of a referral; a completion is counted at once."""
    authorize(principal, "referral.update")
    now = now or utcnow()
    session = uow.session
    referral = _visible(session, principal, referral_id)
    # the named facility follows up; without one, the referring clinic does
    authorize(
        principal,
        "referral.update",
        clinic_id=referral.facility_id or referral.referring_clinic_id,
    )
    before = referral.status
    if status == before:
        return _view(referral, overdue_days=overdue_days, now=now, person=None)
    if status not in TRANSITIONS.get(before, frozenset()):
        raise Conflict(
            f"referral {referral.id} is {before}; it cannot become {status}",
            current_status=before,
            allowed=sorted(TRANSITIONS.get(before, frozenset())),
        )
    referral.status = status
    referral.status_changed_at = now
    referral.status_changed_by = principal.actor_id
    session.flush()
    if "completed" in (before, status):
        uow.publish(ReferralsCompleted(referral.examination_id, now=now))
    audit(
        session,
        actor=principal,
        action="referral.update",
        object_type="Referral",
        object_id=referral.id,
        detail={"from": before, "to": status},
        at=now,
    )
    return _view(referral, overdue_days=overdue_days, now=now, person=None)


# -- subscriptions (registry/subscriptions.py) ------------------------------------------------
def on_version_stored(uow: UnitOfWork, event: VersionStored) -> None:
    """The version's referrals: new ones requested, an amendment's survivors kept."""
    record_referrals(
        uow.session,
        examination=event.examination,
        referrals=event.record.referrals,
        actor=event.actor.actor_id,
        now=event.now,
        amending=event.replaces is not None,
    )


def on_version_retired(uow: UnitOfWork, event: VersionRetired) -> None:
    """An examination entered in error takes its referrals with it (an amendment keeps them)."""
    if event.withdrawn:
        withdraw_referrals(
            uow.session,
            examination_id=event.examination.id,
            actor=event.actor.actor_id,
            now=event.now,
        )

"""Referrals made in examination bundles, followed up by the facility they name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime

OPEN_STATUSES = ("requested", "accepted")
# revoked: dropped by an amendment; entered-in-error: its examination was withdrawn
REFERRAL_STATUSES = (
    *OPEN_STATUSES,
    "completed",
    "lost-to-follow-up",
    "revoked",
    "entered-in-error",
)


class Referral(Base):
    """One ServiceRequest of an examination: to a programme facility, with its follow-up."""

    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # unguessable
    examination_id: Mapped[str] = mapped_column(ForeignKey("examinations.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    referring_clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    # the programme facility's registry id; it need not be registered yet
    facility_id: Mapped[str | None] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    ordinal: Mapped[int] = mapped_column(Integer)  # position among the bundle's referrals
    status: Mapped[str] = mapped_column(String(24), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_by: Mapped[str] = mapped_column(String(128))

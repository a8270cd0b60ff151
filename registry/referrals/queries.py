"""Completed programme referrals: what the surveillance counts read of the referrals' table."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.referrals.models import Referral
from registry.surveillance.tally import PROGRAMME_REFERRALS


def completed_programme_referrals(session: Session, examination_id: str) -> int:
    """How many programme referrals of the examination were completed."""
    completed = session.scalar(
        select(func.count()).where(
            Referral.examination_id == examination_id,
            Referral.status == "completed",
            Referral.reason.in_(sorted(PROGRAMME_REFERRALS)),
        )
    )
    return completed or 0


def completed_by_examination(session: Session) -> dict[str, int]:
    """Completed programme referrals per examination (for rebuilding the counts)."""
    rows = session.execute(
        select(Referral.examination_id, func.count())
        .where(Referral.status == "completed", Referral.reason.in_(sorted(PROGRAMME_REFERRALS)))
        .group_by(Referral.examination_id)
    )
    return {examination_id: count for examination_id, count in rows}

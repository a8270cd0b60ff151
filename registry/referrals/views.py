"""``/api/v1/referrals``: programme facilities follow up the referrals made to them."""

from __future__ import annotations

from typing import Any

from registry.referrals import service
from registry.referrals.schemas import (
    ReferralListSchema,
    ReferralQuerySchema,
    ReferralSchema,
    ReferralStatusSchema,
)
from registry.web import Blueprint, authenticated, context, current_principal

blp = Blueprint(
    "referrals",
    __name__,
    url_prefix="/api/v1/referrals",
    description="Referrals to origin-country TB and HIV programmes and their completion",
)


def _shape(view: service.ReferralView) -> dict[str, Any]:
    referral = view.referral
    return {
        "id": referral.id,
        "examination_id": referral.examination_id,
        "referring_clinic_id": referral.referring_clinic_id,
        "facility_id": referral.facility_id,
        "reason": referral.reason,
        "status": referral.status,
        "created_at": referral.created_at,
        "status_changed_at": referral.status_changed_at,
        "overdue": view.overdue,
        "open_days": view.open_days,
        "person": view.person,
    }


@blp.route("", methods=["GET"])
@authenticated(action="referral.read")
@blp.arguments(ReferralQuerySchema, location="query")
@blp.response(200, ReferralListSchema)
def list_referrals(query: dict[str, Any]) -> Any:
    """Referrals to the calling facility, or made by the calling clinic; overdue ones flagged."""
    ctx = context()
    days = ctx.settings.referral_overdue_days
    with ctx.db.unit_of_work() as uow:
        views = service.list_referrals(
            uow,
            principal=current_principal(),
            direction=query["direction"],
            status=query.get("status"),
            overdue=query.get("overdue"),
            overdue_days=days,
        )
        return {"overdue_after_days": days, "referrals": [_shape(v) for v in views]}


@blp.route("/<referral_id>", methods=["GET"])
@authenticated
@blp.response(200, ReferralSchema)
def read(referral_id: str) -> Any:
    """One referral with the person to expect (the referring clinic and the facility); audited."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        view = service.get_referral(
            uow,
            principal=current_principal(),
            referral_id=referral_id,
            overdue_days=ctx.settings.referral_overdue_days,
        )
        uow.commit()
        return _shape(view)


@blp.route("/<referral_id>/status", methods=["POST"])
@authenticated(action="referral.update")
@blp.arguments(ReferralStatusSchema)
@blp.response(200, ReferralSchema)
@blp.alt_response(409, description="the referral cannot move to that status")
def update_status(body: dict[str, Any], referral_id: str) -> Any:
    """The facility records the referral accepted, completed or lost to follow-up."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        view = service.update_status(
            uow,
            principal=current_principal(),
            referral_id=referral_id,
            status=body["status"],
            overdue_days=ctx.settings.referral_overdue_days,
        )
        uow.commit()
        return _shape(view)

"""Referral API schemas (explicit fields)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.referrals.models import REFERRAL_STATUSES
from registry.referrals.service import DIRECTIONS, FACILITY_STATUSES


class ReferralQuerySchema(Schema):
    direction = fields.String(
        load_default="incoming",
        validate=validate.OneOf(DIRECTIONS),
        metadata={"description": "incoming: to the calling facility; outgoing: made by it"},
    )
    status = fields.String(validate=validate.OneOf(REFERRAL_STATUSES))
    overdue = fields.Boolean()


class ReferralStatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(FACILITY_STATUSES))


class ReferredPersonSchema(Schema):
    name = fields.String()
    birth_date = fields.Date()
    sex = fields.String()
    document_hint = fields.String(allow_none=True)


class ReferralSchema(Schema):
    id = fields.String()
    examination_id = fields.String()
    referring_clinic_id = fields.String()
    facility_id = fields.String(allow_none=True)
    reason = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    status_changed_at = fields.DateTime()
    overdue = fields.Boolean()
    open_days = fields.Integer(allow_none=True)
    person = fields.Nested(ReferredPersonSchema, allow_none=True)


class ReferralListSchema(Schema):
    overdue_after_days = fields.Integer()
    referrals = fields.List(fields.Nested(ReferralSchema))

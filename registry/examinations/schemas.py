"""Examination API schemas (explicit fields; nothing medical in the responses)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class AssessmentSchema(Schema):
    destination = fields.String()
    met = fields.Boolean()
    reasons = fields.List(fields.Dict(), metadata={"description": "visible to the clinic only"})
    certificate_id = fields.String(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)


class ExaminationReceiptSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    status = fields.String()
    purpose = fields.String()
    destination = fields.String(allow_none=True)
    examination_date = fields.Date()
    bundle_sha256 = fields.String()
    signing_kid = fields.String()
    custodial = fields.Boolean()
    created = fields.Boolean()
    assessments = fields.List(fields.Nested(AssessmentSchema))
    links = fields.Dict(keys=fields.String(), values=fields.String())


class WithdrawSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class VersionQuerySchema(Schema):
    version = fields.Integer(validate=validate.Range(min=1))

"""Request and response schemas of the clinics API (explicit field lists)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.accreditation.models import CLINIC_STATUSES, PURPOSES


class ClinicKeySchema(Schema):
    kid = fields.String()
    custody = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    public_jwk = fields.Dict()


class ClinicStatusEventSchema(Schema):
    status = fields.String()
    effective_at = fields.DateTime()
    reason = fields.String(allow_none=True)


class ClinicSchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    city = fields.String(allow_none=True)
    status = fields.String()
    accredited_from = fields.Date()
    accredited_until = fields.Date(allow_none=True)
    purposes = fields.List(fields.String())
    annual_quota = fields.Integer(allow_none=True)
    history = fields.List(fields.Nested(ClinicStatusEventSchema))
    keys = fields.List(fields.Nested(ClinicKeySchema))


class ClinicQuerySchema(Schema):
    country = fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    status = fields.String(validate=validate.OneOf(CLINIC_STATUSES))


class ClinicCreateSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}-[A-Z]{3}-\d{4}$"))
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    city = fields.String(validate=validate.Length(max=100))
    purposes = fields.List(
        fields.String(validate=validate.OneOf(PURPOSES)),
        required=True,
        validate=validate.Length(min=1),
    )
    accredited_from = fields.Date(required=True)
    accredited_until = fields.Date(allow_none=True)
    annual_quota = fields.Integer(allow_none=True, validate=validate.Range(min=1))


class ClinicStatusChangeSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(CLINIC_STATUSES))
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
    effective_at = fields.AwareDateTime()


class KeyRegisterSchema(Schema):
    jwk = fields.Dict(required=True)


class KeyStatusChangeSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("retired", "compromised")))
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
    effective_at = fields.AwareDateTime()


class ClinicClientCreateSchema(Schema):
    jwk = fields.Dict(
        required=True, metadata={"description": "the client's public EC P-256 JWK (no 'd')"}
    )
    name = fields.String(validate=validate.Length(min=2, max=200))
    client_id = fields.String(validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{2,63}$"))


class ClinicClientSchema(Schema):
    client_id = fields.String(attribute="id")
    name = fields.String()
    role = fields.String()
    clinic_id = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    jwks = fields.Dict()

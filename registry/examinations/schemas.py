"""Examination API schemas (explicit fields; nothing medical in the responses)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.fhir import purpose_of_use as purpose_of_use_codes
from registry.transparency.reasons import REVOCATION_CODES


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


class PurposeOfUseSchema(Schema):
    purpose_of_use = fields.String(
        required=True,
        validate=validate.OneOf(sorted(purpose_of_use_codes.CLINIC)),
        metadata={
            "example": "TREAT",
            "description": "a code of HL7 PurposeOfUse (v3-ActReason): "
            + purpose_of_use_codes.described(purpose_of_use_codes.CLINIC),
        },
    )


class CertifiedForSchema(Schema):
    destination = fields.String()
    certificate_id = fields.String()
    status = fields.String()
    valid_until = fields.Date()
    revocation_reason = fields.String(
        allow_none=True,
        metadata={"description": "when no longer valid, why: " + ", ".join(REVOCATION_CODES)},
    )
    revoked_at = fields.DateTime(allow_none=True)


class ReferralSummarySchema(Schema):
    id = fields.String()
    reason = fields.String()
    status = fields.String()


class ClinicSummarySchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()


class EarlierExaminationSchema(Schema):
    id = fields.String()
    examination_date = fields.Date()
    clinic = fields.Nested(ClinicSummarySchema)
    purpose = fields.String()
    destination = fields.String(allow_none=True)
    status = fields.String()
    linked = fields.Boolean(metadata={"description": "named as this examination's previous one"})
    certified_for = fields.List(fields.Nested(CertifiedForSchema))
    referrals = fields.List(fields.Nested(ReferralSummarySchema))


class HistorySchema(Schema):
    examination_id = fields.String()
    purpose_of_use = fields.String()
    earlier = fields.List(fields.Nested(EarlierExaminationSchema))
    read_at = fields.DateTime()


class LookupDocumentSchema(Schema):
    country = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(
        validate=validate.OneOf(["passport", "id-card", "birth-certificate", "residence-permit"])
    )


class LookupRequestSchema(Schema):
    document = fields.Nested(LookupDocumentSchema, required=True)
    birth_date = fields.Date(required=True)
    destination = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$"))


class LookupCertificateSchema(Schema):
    id = fields.String()
    destination = fields.String()
    valid_from = fields.Date()
    valid_until = fields.Date()


class LookupSchema(Schema):
    holds_valid_certificate = fields.Boolean()
    destination = fields.String(allow_none=True)
    certificates = fields.List(fields.Nested(LookupCertificateSchema))
    checked_at = fields.DateTime()


class RegisterQuerySchema(Schema):
    q = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the clinic's examination number (prefix) or a document number"},
    )
    document_country = fields.String(
        validate=validate.Regexp(r"^[A-Z]{2}$"),
        metadata={"description": "with q: also match q as a document of this country"},
    )
    status = fields.String(validate=validate.OneOf(["final", "entered-in-error"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class RegisterCertificateSchema(Schema):
    id = fields.String()
    destination = fields.String()
    status = fields.String()
    valid_from = fields.Date()
    valid_until = fields.Date()


class RegisterEntrySchema(Schema):
    id = fields.String()
    number = fields.String()
    status = fields.String()
    version = fields.Integer()
    purpose = fields.String()
    destination = fields.String(allow_none=True)
    examination_date = fields.Date()
    updated_at = fields.DateTime()
    holder_name = fields.String()
    birth_date = fields.Date()
    document_hint = fields.String(allow_none=True)
    certificates = fields.List(fields.Nested(RegisterCertificateSchema))


class QuotaSchema(Schema):
    year = fields.Integer()
    limit = fields.Integer(allow_none=True, metadata={"description": "null: no quota is set"})
    used = fields.Integer()
    remaining = fields.Integer(allow_none=True)


class RegisterSchema(Schema):
    clinic_id = fields.String()
    total = fields.Integer()
    entries = fields.List(fields.Nested(RegisterEntrySchema))
    quota = fields.Nested(QuotaSchema)

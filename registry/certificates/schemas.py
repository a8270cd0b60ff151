"""Request and response schemas of the rulesets and certificates APIs (explicit field lists)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_dump, validate, validates_schema
from marshmallow.exceptions import ValidationError

from registry.certificates.labels import LANGUAGES
from registry.certificates.pdf import PAPER_MARGINS
from registry.transparency.reasons import REVOCATION_CODES, revocation_code


class LegalBasisSchema(Schema):
    citation = fields.String()
    summary = fields.String()


class RequiredTestSchema(Schema):
    key = fields.String()
    any_of = fields.List(fields.String())
    note = fields.String()


class FindingMatchSchema(Schema):
    concept = fields.String()
    outcomes = fields.List(fields.String())


class DisqualifyingFindingSchema(Schema):
    condition = fields.String()
    when = fields.List(fields.Nested(FindingMatchSchema))
    unless = fields.List(fields.Nested(FindingMatchSchema))
    note = fields.String()


class AgeRuleSchema(Schema):
    below_age = fields.Integer()
    required_tests = fields.List(fields.Nested(RequiredTestSchema))
    note = fields.String()


class ExtensionSchema(Schema):
    starts = fields.String(data_key="from")
    ends = fields.String(data_key="until")
    extra_days = fields.Integer()
    reason = fields.String()


class RulesetSchema(Schema):
    """A published ruleset version: its document, and where and when it was published."""

    destination = fields.String()
    version = fields.Integer()
    title = fields.String()
    legal_basis = fields.List(fields.Nested(LegalBasisSchema))
    effective_from = fields.Date()
    effective_until = fields.Date(allow_none=True)
    accepted_purposes = fields.List(fields.String())
    required_tests = fields.List(fields.Nested(RequiredTestSchema))
    disqualifying_findings = fields.List(fields.Nested(DisqualifyingFindingSchema))
    validity_days = fields.Integer()
    age_rules = fields.List(fields.Nested(AgeRuleSchema))
    extensions = fields.List(fields.Nested(ExtensionSchema))
    assumptions = fields.List(fields.String())
    source = fields.String()
    sha256 = fields.String()
    published_at = fields.DateTime()

    @pre_dump
    def _document(self, row: Any, **_: Any) -> dict[str, Any]:
        document = dict(row.document)
        extensions = [
            {
                "starts": e["from"],
                "ends": e["until"],
                "extra_days": e["extra_days"],
                "reason": e["reason"],
            }
            for e in document.get("extensions", [])
        ]
        return {
            **document,
            "age_rules": document.get("age_rules", []),
            "extensions": extensions,
            "effective_from": row.effective_from,
            "effective_until": row.effective_until,
            "source": row.source,
            "sha256": row.sha256,
            "published_at": row.loaded_at,
        }


class ExtensionRequestSchema(Schema):
    starts = fields.Date(required=True, data_key="from")
    ends = fields.Date(required=True, data_key="until")
    extra_days = fields.Integer(required=True, validate=validate.Range(min=1, max=365))
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))

    @validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        if data["ends"] < data["starts"]:
            raise ValidationError("until is before from", "until")


class ExtensionResultSchema(Schema):
    ruleset = fields.Nested(RulesetSchema)
    extended = fields.Integer()

    @pre_dump
    def _count(self, result: Any, **_: Any) -> dict[str, Any]:
        return {"ruleset": result.ruleset, "extended": len(result.extended)}


class CertificateClinicSchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()


class CertificateSchema(Schema):
    """A certificate as its clinic and its holder see it: never a test or a result."""

    id = fields.String()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    destination = fields.String()
    purpose = fields.String()
    valid_from = fields.Date()
    valid_until = fields.Date()
    issued_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    revocation_reason = fields.Method(
        "_revocation_reason",
        allow_none=True,
        metadata={
            "description": "when no longer valid, why: " + ", ".join(REVOCATION_CODES),
            "enum": [*REVOCATION_CODES, None],
        },
    )
    clinic = fields.Nested(CertificateClinicSchema)
    log = fields.Dict(
        attribute="log_leaf",
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "the transparency-log leaf of its current card: leaf_hash (hex) and "
            "leaf_index (null until sequenced, within seconds)"
        },
    )

    def _revocation_reason(self, certificate: Any) -> str | None:
        return revocation_code(certificate.status, certificate.status_reason)


class HolderQuerySchema(Schema):
    h = fields.String(validate=validate.Length(min=1, max=64))


class PdfQuerySchema(HolderQuerySchema):
    lang = fields.String(validate=validate.OneOf(LANGUAGES))
    paper = fields.String(validate=validate.OneOf(tuple(PAPER_MARGINS)))


class RevokeSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))

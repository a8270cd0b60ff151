"""Verification API schemas. Explicit field lists: nothing medical can reach a verifier."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.verification.authority import PURPOSES_OF_USE
from registry.verification.verdict import (
    EXAMINATION_CERTIFICATE,
    OTHER_CARD,
    REASON_CODES,
    RESULTS,
)


class VerifyRequestSchema(Schema):
    """One of: ``qr``; ``jws``; ``certificate_id`` with ``birth_date``."""

    qr = fields.String(metadata={"description": "the scanned QR text, shc:/ and digits"})
    jws = fields.String(metadata={"description": "a SMART Health Card as a compact JWS"})
    certificate_id = fields.String(metadata={"example": "KZ-7F3K-9QP4"})
    birth_date = fields.String(metadata={"description": "YYYY-MM-DD, with certificate_id"})
    for_destination = fields.String(
        metadata={
            "example": "RU",
            "description": "optional: the country the verifier checks for (ISO 3166-1 "
            "alpha-2). A valid certificate for another destination is then answered "
            "valid_for_other_destination, with the destination it is valid for in certificate. "
            "Anything but a two-letter code is answered 400.",
        }
    )


class CertificateFactsSchema(Schema):
    id = fields.String()
    purpose = fields.String()
    destination = fields.String()
    issued = fields.DateTime()
    valid_from = fields.Date()
    valid_until = fields.Date()


class HolderFactsSchema(Schema):
    name = fields.String()
    birth_date = fields.String()
    document_hint = fields.String(allow_none=True, metadata={"example": "•••• 4821"})
    photo_url = fields.String(
        allow_none=True, metadata={"description": "short-lived; present when a photo was taken"}
    )


class AccreditationSchema(Schema):
    at_examination = fields.String(allow_none=True)
    now = fields.String(allow_none=True)


class ClinicFactsSchema(Schema):
    id = fields.String()
    name = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    accreditation = fields.Nested(AccreditationSchema)


class VerificationSchema(Schema):
    """The answer to a verification; ``receipt`` is the registry's JWS over all other fields."""

    result = fields.String(
        validate=validate.OneOf(RESULTS),
        metadata={
            "enum": list(RESULTS),
            "description": "valid_for_other_destination: a valid certificate, but for another "
            "country than for_destination; certificate.destination and certificate.purpose "
            "say what it is valid for",
        },
    )
    reason = fields.String(allow_none=True, metadata={"description": "in English, for people"})
    reason_code = fields.String(
        allow_none=True,
        metadata={
            "enum": list(REASON_CODES),
            "description": "why the answer is not a plain valid, as a code (pages translate it)",
        },
    )
    for_destination = fields.String(
        allow_none=True, metadata={"description": "the country the verifier said it checks for"}
    )
    revoked_at = fields.DateTime(
        allow_none=True, metadata={"description": "since when a revoked or replaced certificate is"}
    )
    card_type = fields.String(
        allow_none=True, metadata={"enum": [EXAMINATION_CERTIFICATE, OTHER_CARD]}
    )
    certificate = fields.Nested(CertificateFactsSchema, allow_none=True)
    holder = fields.Nested(HolderFactsSchema, allow_none=True)
    clinic = fields.Nested(ClinicFactsSchema, allow_none=True)
    issuer = fields.String(allow_none=True)
    kid = fields.String(allow_none=True)
    revocation_checked_at = fields.DateTime(allow_none=True)
    checked_at = fields.DateTime()
    authority_view = fields.String(
        allow_none=True, metadata={"description": "for an authority of the destination only"}
    )
    log_leaf = fields.String(
        allow_none=True,
        metadata={
            "description": "hex leaf hash of this verification's audit leaf in the transparency "
            "log; its inclusion proof: /log/proof/inclusion?leaf_hash=…"
        },
    )
    receipt = fields.String(allow_none=True)


class TrustListSchema(Schema):
    """The trust list: the registry's compact JWS and, for reading, its decoded document."""

    jws = fields.String()
    document = fields.Dict()


class AuthorityQuerySchema(Schema):
    purpose_of_use = fields.String(
        required=True,
        validate=validate.OneOf(sorted(PURPOSES_OF_USE)),
        metadata={
            "example": "GOV",
            "description": "a code of HL7 PurposeOfUse (v3-ActReason): "
            + "; ".join(f"{code} {text}" for code, text in PURPOSES_OF_USE.items()),
        },
    )


class AuthorityClinicSchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    accreditation_at_examination = fields.String()


class AuthorityHolderSchema(Schema):
    name = fields.String()
    birth_date = fields.Date()
    document_hint = fields.String(allow_none=True)


class AuthoritySignatureSchema(Schema):
    kid = fields.String()
    custodial = fields.Boolean()
    signed_at = fields.DateTime()
    bundle_sha256 = fields.String()


class AuthorityTestSchema(Schema):
    requirement = fields.String()
    concept = fields.String()
    loinc = fields.String()
    outcome = fields.String()
    effective = fields.Date()


class AuthorityCertificateSchema(Schema):
    id = fields.String()
    status = fields.String()
    valid_from = fields.Date()
    valid_until = fields.Date()


class AuthorityRulesetSchema(Schema):
    destination = fields.String()
    version = fields.Integer()
    title = fields.String()


class AuthorityExaminationSchema(Schema):
    """What a destination's authority reads: its own ruleset's required tests, nothing more."""

    id = fields.String()
    status = fields.String()
    version = fields.Integer()
    purpose = fields.String()
    destination = fields.String(allow_none=True)
    examination_date = fields.Date()
    clinic = fields.Nested(AuthorityClinicSchema)
    holder = fields.Nested(AuthorityHolderSchema)
    signature = fields.Nested(AuthoritySignatureSchema)
    ruleset = fields.Nested(AuthorityRulesetSchema)
    tests = fields.List(fields.Nested(AuthorityTestSchema))
    certificates = fields.List(fields.Nested(AuthorityCertificateSchema))
    purpose_of_use = fields.String()
    read_at = fields.DateTime()

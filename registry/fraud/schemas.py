"""Fraud signal API schemas (explicit fields: no person, no result)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class SignalQuerySchema(Schema):
    country = fields.String(
        validate=validate.Regexp(r"^[A-Z]{2}$"),
        metadata={"description": "the clinics' country; an accreditor's own by default"},
    )
    since = fields.Date(metadata={"description": "default: 90 days before until"})
    until = fields.Date(metadata={"description": "default: today"})
    window_days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))
    min_examinations = fields.Integer(load_default=20, validate=validate.Range(min=2, max=100000))
    z = fields.Float(load_default=3.0, validate=validate.Range(min=1.0, max=10.0))


class ExaminedSchema(Schema):
    id = fields.String()
    clinic_id = fields.String()
    clinic_country = fields.String()
    examination_date = fields.Date()
    purpose = fields.String()
    destination = fields.String()
    verdict = fields.String(metadata={"description": "fit | no-certificate"})


class DivergentVerdictsSchema(Schema):
    person_ref = fields.String()
    destination = fields.String()
    days_apart = fields.Integer()
    examinations = fields.List(fields.Nested(ExaminedSchema))


class OutlierClinicSchema(Schema):
    clinic_id = fields.String()
    country = fields.String()
    examinations = fields.Integer()
    fit = fields.Integer()
    fit_rate = fields.Float()
    peer_examinations = fields.Integer()
    peer_fit_rate = fields.Float()
    z = fields.Float()
    direction = fields.String()


class SignalsSchema(Schema):
    country = fields.String(allow_none=True)
    since = fields.Date()
    until = fields.Date()
    window_days = fields.Integer()
    z_threshold = fields.Float()
    min_examinations = fields.Integer()
    divergent_verdicts = fields.List(fields.Nested(DivergentVerdictsSchema))
    outlier_clinics = fields.List(fields.Nested(OutlierClinicSchema))
    generated_at = fields.DateTime()

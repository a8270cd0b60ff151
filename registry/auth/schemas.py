"""Token endpoint schemas (form-encoded request, RFC 6749 response)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class TokenRequestSchema(Schema):
    class Meta:
        unknown = INCLUDE

    grant_type = fields.String()
    client_assertion_type = fields.String()
    client_assertion = fields.String()
    scope = fields.String()


class TokenResponseSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    scope = fields.String()


class OAuthErrorSchema(Schema):
    """RFC 6749 §5.2 error response."""

    error = fields.String(required=True)
    error_description = fields.String()

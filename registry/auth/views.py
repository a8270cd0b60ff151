"""``POST /oauth/token``: client credentials with a private_key_jwt client assertion."""

from __future__ import annotations

from flask import Response, jsonify, request

from registry.auth import service
from registry.auth.schemas import OAuthErrorSchema, TokenRequestSchema, TokenResponseSchema
from registry.extensions import limiter
from registry.web import Blueprint, context

blp = Blueprint(
    "auth", __name__, description="OAuth 2.0 client credentials (SMART Backend Services)"
)


def _token_limit() -> str:
    return context().settings.token_rate_limit


@blp.route("/oauth/token", methods=["POST"])
@limiter.limit(_token_limit)
@blp.arguments(TokenRequestSchema, location="form")
@blp.response(200, TokenResponseSchema)
@blp.alt_response(400, schema=OAuthErrorSchema, description="invalid request, grant or scope")
@blp.alt_response(401, schema=OAuthErrorSchema, description="the client assertion is refused")
def token(form: dict[str, str]) -> Response:
    """Exchange a signed client assertion for a short-lived ES256 access token."""
    ctx = context()
    try:
        with ctx.db.unit_of_work() as uow:
            issued = service.issue_token(uow, form=dict(request.form))
            uow.commit()
    except service.TokenError as exc:
        response = jsonify(error=exc.error, error_description=exc.message)
        response.status_code = exc.status
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
        response.headers["Cache-Control"] = "no-store"
        return response
    response = jsonify(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        scope=issued.scope,
    )
    response.headers["Cache-Control"] = "no-store"
    return response

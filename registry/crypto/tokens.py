"""JSON Web Tokens (ES256): the one home of PyJWT in the registry.

Client assertions (RFC 7523, private_key_jwt) and the registry's access tokens are read and
made here. A failure is a ``TokenProblem`` naming what is wrong, in words a client can act on;
the services turn it into their own errors.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

ALGORITHM = "ES256"


class TokenProblem(Exception):
    """Why a token was refused: ``kind`` is malformed, expired, immature, audience or invalid."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a token whose signature is not checked yet (to find its key)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenProblem("malformed", str(exc)) from exc
    return header, claims


def unverified_header(token: str) -> dict[str, Any]:
    """The header of a token, unchecked."""
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenProblem("malformed", str(exc)) from exc


def verified_claims(
    token: str,
    key: Any,
    *,
    audience: str,
    issuer: str,
    require: list[str],
    leeway: timedelta = timedelta(0),
) -> dict[str, Any]:
    """The claims of an ES256 token signed by ``key`` for ``audience`` from ``issuer``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": require},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenProblem("expired", str(exc)) from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenProblem("immature", str(exc)) from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenProblem("audience", str(exc)) from exc
    except jwt.PyJWTError as exc:
        raise TokenProblem("invalid", str(exc)) from exc
    return claims


def signed_token(claims: dict[str, Any], key: Any, *, kid: str, typ: str | None = None) -> str:
    """An ES256 token of ``claims`` signed with ``key`` under ``kid``."""
    headers = {"kid": kid} | ({"typ": typ} if typ else {})
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers=headers)

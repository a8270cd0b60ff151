"""Clients, client assertions (private_key_jwt), access tokens and bearer authentication."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.accreditation.models import Clinic, Jurisdiction
from registry.accreditation.status import accreditation_at
from registry.audit.service import Actor, record
from registry.auth.models import ROLES, Client, UsedAssertion
from registry.auth.principal import ROLE_SCOPES, Principal
from registry.config import Settings
from registry.crypto import tokens
from registry.crypto.keys import (
    KeyFormatError,
    b64url_decode,
    load_public_jwk,
    public_jwk,
    thumbprint,
)
from registry.crypto.keystore import KeyStore
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest, DomainError, Forbidden, NotFound, Unauthorized
from registry.jsonlimits import loads_strict

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY = timedelta(seconds=30)
# an ES256 client assertion with the usual claims is under 600 characters
MAX_ASSERTION_CHARS = 4096


class TokenError(DomainError):
    """An OAuth error at the token endpoint (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


# -- clients ---------------------------------------------------------------------------------
def add_client(
    uow: UnitOfWork,
    *,
    actor: Actor,
    name: str,
    role: str,
    jwk: dict[str, Any],
    clinic_id: str | None = None,
    country: str | None = None,
    client_id: str | None = None,
) -> Client:
    """Register a client with its public key; the role decides which of clinic/country it needs."""
    session = uow.session
    if role not in ROLES:
        raise BadRequest(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    try:
        public = {**public_jwk(load_public_jwk(jwk))}
    except KeyFormatError as exc:
        raise BadRequest(f"client key: {exc}") from exc
    public["kid"] = jwk.get("kid") or thumbprint(public)
    if role == "clinic":
        clinic = session.get(Clinic, clinic_id) if clinic_id else None
        if clinic is None:
            raise BadRequest("a clinic client needs --clinic naming a registered clinic")
        country = clinic.country
    elif clinic_id:
        raise BadRequest(f"a {role} client is not tied to a clinic")
    if role in ("authority", "ministry", "accreditor"):
        if not country or session.get(Jurisdiction, country.upper()) is None:
            raise BadRequest(f"a {role} client needs --country naming a jurisdiction")
        country = country.upper()
    client = Client(
        id=client_id or f"{role}-{secrets.token_hex(6)}",
        name=name,
        role=role,
        clinic_id=clinic_id,
        country=country,
        jwks={"keys": [public]},
        status="active",
        created_at=utcnow(),
    )
    session.add(client)
    try:
        session.flush()
    except IntegrityError as exc:
        raise BadRequest(f"client id {client.id!r} is taken") from exc
    record(
        session,
        actor=actor,
        action="client.create",
        object_type="Client",
        object_id=client.id,
        detail={"role": role, "clinic": clinic_id, "country": country},
    )
    return client


def set_client_status(uow: UnitOfWork, *, actor: Actor, client_id: str, status: str) -> Client:
    """Enable or disable a client."""
    client = uow.session.get(Client, client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r}")
    if status not in ("active", "disabled"):
        raise BadRequest("client status is active or disabled")
    client.status = status
    record(
        uow.session,
        actor=actor,
        action="client.status",
        object_type="Client",
        object_id=client_id,
        detail={"status": status},
    )
    return client


# -- the token endpoint ----------------------------------------------------------------------
@dataclass(frozen=True)
class AccessToken:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise TokenError(
            "invalid_request", f"client_assertion is longer than {MAX_ASSERTION_CHARS} characters"
        )
    try:
        header, claims = tokens.unverified(assertion)
        loads_strict(b64url_decode(assertion.split(".")[1]))  # no NaN/Infinity, no NUL
    except (tokens.TokenProblem, ValueError) as exc:
        raise TokenError("invalid_client", f"client_assertion is not a JWT: {exc}", 401) from exc
    return header, claims


def _client_key(client: Client, kid: str | None) -> Any:
    keys = client.jwks.get("keys", [])
    if kid is None and len(keys) == 1:
        chosen = keys[0]
    else:
        chosen = next((k for k in keys if k.get("kid") == kid), None)
    if chosen is None:
        raise TokenError("invalid_client", f"client {client.id} has no registered key {kid!r}", 401)
    return load_public_jwk(chosen)


def issue_token(
    uow: UnitOfWork,
    *,
    form: dict[str, str],
    now: datetime | None = None,
) -> AccessToken:
    """Check a client_credentials request with a private_key_jwt assertion; issue a token."""
    settings, keystore = uow.settings, uow.keystore
    now = now or utcnow()
    session = uow.session
    if form.get("grant_type") != "client_credentials":
        raise TokenError("unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion") or ""
    header, unverified = _unverified(assertion)
    if header.get("alg") != "ES256":
        raise TokenError(
            "invalid_client",
            f"assertion algorithm {header.get('alg')!r} is not allowed; use ES256",
            401,
        )
    client_id = unverified.get("iss")
    client = session.get(Client, client_id) if isinstance(client_id, str) else None
    if client is None:
        raise TokenError("invalid_client", f"unknown client {client_id!r}", 401)
    if unverified.get("sub") != client.id:
        raise TokenError("invalid_client", "assertion sub must equal iss (the client id)", 401)
    key = _client_key(client, header.get("kid"))
    try:
        claims = tokens.verified_claims(
            assertion,
            key,
            audience=settings.token_url,
            issuer=client.id,
            leeway=LEEWAY,
            require=["exp", "iss", "sub", "aud", "jti"],
        )
    except tokens.TokenProblem as exc:
        said = {
            "expired": "client assertion has expired",
            "immature": "client assertion is not yet valid",
            "audience": f"assertion aud must be {settings.token_url}",
        }.get(exc.kind, f"client assertion rejected: {exc}")
        raise TokenError("invalid_client", said, 401) from exc
    # compared as numbers: an exp of 1e20 is refused here, not an overflow in fromtimestamp
    ahead = int(claims["exp"]) - now.timestamp()
    if ahead > settings.assertion_max_seconds + LEEWAY.total_seconds():
        raise TokenError("invalid_client", "assertion exp may be at most 5 minutes ahead", 401)
    expires_at = now + timedelta(seconds=ahead)
    if client.status != "active":
        raise TokenError("invalid_client", f"client {client.id} is disabled", 401)
    if client.clinic_id:
        clinic = session.get(Clinic, client.clinic_id)
        status = accreditation_at(clinic, now) if clinic else "withdrawn"
        if status != "active":
            raise TokenError("invalid_client", f"clinic {client.clinic_id} is {status}", 401)
    jti = str(claims["jti"])[:255]
    session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < now - LEEWAY))
    session.add(UsedAssertion(client_id=client.id, jti=jti, expires_at=expires_at))
    try:
        session.flush()
    except IntegrityError as exc:
        raise TokenError("invalid_client", "client assertion jti was already used", 401) from exc
    allowed = ROLE_SCOPES[client.role]
    requested = set((form.get("scope") or "").split()) or set(allowed)
    if not requested <= allowed:
        extra = " ".join(sorted(requested - allowed))
        raise TokenError("invalid_scope", f"the {client.role} role cannot have scope {extra}")
    scope = " ".join(sorted(requested))
    lifetime = settings.access_token_seconds
    token_key = keystore.active("token")
    access = tokens.signed_token(
        {
            "iss": settings.base_url,
            "sub": client.id,
            "aud": settings.base_url,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + lifetime,
            "jti": secrets.token_urlsafe(16),
            "scope": scope,
            "role": client.role,
        },
        token_key.private_key,
        kid=token_key.kid,
        typ="at+jwt",
    )
    return AccessToken(access_token=access, expires_in=lifetime, scope=scope)


# -- bearer tokens on every other endpoint ---------------------------------------------------
def authenticate(
    session: Session,
    *,
    authorization: str | None,
    settings: Settings,
    keystore: KeyStore,
    now: datetime | None = None,
) -> Principal | None:
    """The principal behind an ``Authorization: Bearer`` header, or None when there is none."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <access token>'")
    token = token.strip()
    try:
        header = tokens.unverified_header(token)
    except tokens.TokenProblem as exc:
        raise Unauthorized("the access token is not a JWT") from exc
    # a token key only: a certificate or document key never vouches for a caller
    key = keystore.find(str(header.get("kid")), purpose="token")
    if header.get("alg") != "ES256" or key is None:
        raise Unauthorized("the access token was not issued by this registry")
    try:
        claims = tokens.verified_claims(
            token,
            key.public_key,
            audience=settings.base_url,
            issuer=settings.base_url,
            require=["exp", "iat", "sub", "scope"],
        )
    except tokens.TokenProblem as exc:
        if exc.kind == "expired":
            raise Unauthorized("the access token has expired; request a new one") from exc
        raise Unauthorized(f"the access token is invalid: {exc}") from exc
    # one query per request: the client and, for a clinic, its current accreditation
    row = session.execute(
        select(
            Client.id,
            Client.name,
            Client.role,
            Client.status,
            Client.clinic_id,
            Client.country,
            Clinic.status,
            Clinic.accredited_from,
            Clinic.accredited_until,
        )
        .outerjoin(Clinic, Clinic.id == Client.clinic_id)
        .where(Client.id == claims["sub"])
    ).one_or_none()
    if row is None or row[3] != "active":
        raise Unauthorized("the client of this access token is no longer active")
    client = Client(id=row[0], name=row[1], role=row[2], clinic_id=row[4], country=row[5])
    if client.clinic_id:
        today = (now or utcnow()).date()
        status = row[6] or "withdrawn"
        if status == "active" and not (row[7] <= today and (row[8] is None or today <= row[8])):
            status = "outside-accreditation-window"
        if status != "active":
            raise Forbidden(f"clinic {client.clinic_id} is {status}; it may not act")
    return Principal(
        client_id=client.id,
        role=client.role,
        name=client.name,
        scopes=frozenset(str(claims["scope"]).split()) & ROLE_SCOPES[client.role],
        clinic_id=client.clinic_id,
        country=client.country,
    )

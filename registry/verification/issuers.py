"""Other SMART Health Card issuers of the trust network: registered by ``iss``, JWKS and CRLs.

A participating country's own issuing system is trusted once an operator registers it. Its keys
must follow the SMART Health Cards rules (EC P-256, ``kid`` the RFC 7638 thumbprint); each
revocation list must belong to one of its keys and use the ``rid`` method.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from registry.audit.service import record
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.config import Settings
from registry.crypto.keys import KeyFormatError, PublicKey, load_public_jwk, thumbprint
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest, Conflict, NotFound
from registry.verification.models import ISSUER_STATUSES, ExternalIssuer

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# a rid (1 to 24 base64url characters), optionally revoking only cards signed before a time
_CRL_ENTRY = re.compile(r"[A-Za-z0-9_\-]{1,24}(\.[0-9]{1,12})?")
_keys_cache: dict[tuple[str, datetime], dict[str, PublicKey]] = {}
_keys_lock = threading.Lock()


def _check_iss(iss: str, settings: Settings) -> str:
    iss = iss.strip()
    parts = urlsplit(iss)
    host = (parts.hostname or "").lower()
    local = parts.scheme == "http" and (
        host in _LOCAL_HOSTS or host.endswith((".localhost", ".test"))
    )
    if not (parts.scheme == "https" or local) or not parts.netloc:
        raise BadRequest(f"an issuer is an https URL, not {iss!r}")
    if iss.endswith("/") or parts.query or parts.fragment:
        raise BadRequest("an issuer URL has no trailing slash, query or fragment")
    if iss == settings.base_url:
        raise BadRequest("that is this registry's own issuer URL")
    return iss


def _check_jwks(jwks: Any) -> dict[str, Any]:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise BadRequest('a JWKS is a JSON object with a non-empty "keys" array')
    published = []
    for index, jwk in enumerate(keys):
        if not isinstance(jwk, dict):
            raise BadRequest(f"keys[{index}] is not a JWK object")
        if "d" in jwk:
            raise BadRequest(f"keys[{index}] holds a private key; register public keys only")
        try:
            load_public_jwk(jwk)
            expected = thumbprint(jwk)
        except KeyFormatError as exc:
            raise BadRequest(f"keys[{index}]: {exc}") from exc
        if jwk.get("kid") != expected:
            raise BadRequest(
                f"keys[{index}]: kid must be the key's RFC 7638 thumbprint {expected!r}"
            )
        if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
            raise BadRequest(f"keys[{index}]: SMART Health Card keys are ES256 signing keys")
        published.append(
            {k: jwk[k] for k in ("kty", "crv", "x", "y", "kid", "use", "alg") if k in jwk}
        )
    return {"keys": published}


def _check_crls(crls: Sequence[Any], kids: set[str]) -> dict[str, Any]:
    by_kid: dict[str, Any] = {}
    for crl in crls:
        if not isinstance(crl, dict) or not isinstance(crl.get("kid"), str):
            raise BadRequest("a revocation list is a JSON object with a kid")
        kid = crl["kid"]
        if kid not in kids:
            raise BadRequest(f"the revocation list of {kid} names no key of this issuer")
        ctr = crl.get("ctr")
        if not isinstance(ctr, int) or isinstance(ctr, bool) or ctr < 1:
            raise BadRequest(f"the revocation list of {kid} has no counter ctr")
        if crl.get("method") != "rid" or not isinstance(crl.get("rids"), list):
            raise BadRequest(f"the revocation list of {kid} is not of method rid")
        malformed = [
            e for e in crl["rids"] if not isinstance(e, str) or not _CRL_ENTRY.fullmatch(e)
        ]
        if malformed:
            raise BadRequest(f"the revocation list of {kid} has malformed entries: {malformed[:3]}")
        by_kid[kid] = {"kid": kid, "method": "rid", "ctr": ctr, "rids": list(crl["rids"])}
    return by_kid


def add_issuer(
    uow: UnitOfWork,
    *,
    principal: Principal,
    iss: str,
    jwks: Any,
    crls: Sequence[Any] = (),
    name: str | None = None,
    settings: Settings,
    now: datetime | None = None,
) -> tuple[ExternalIssuer, bool]:
    """Register an issuer, or replace the keys and lists of one already registered."""
    authorize(principal, "issuer.manage")
    now = now or utcnow()
    iss = _check_iss(iss, settings)
    published = _check_jwks(jwks)
    by_kid = _check_crls(crls, {k["kid"] for k in published["keys"]})
    row = uow.session.get(ExternalIssuer, iss)
    created = row is None
    if row is None:
        row = ExternalIssuer(
            iss=iss, status="active", added_at=now, added_by=principal.actor_id, crl={}
        )
        uow.session.add(row)
    row.name = name or row.name
    row.jwks = published
    if crls or created:
        row.crl = by_kid
        row.crl_updated_at = now if crls else None
    row.updated_at = now
    uow.session.flush()
    record(
        uow.session,
        actor=principal,
        action="issuer.create" if created else "issuer.update",
        object_type="ExternalIssuer",
        object_id=iss,
        detail={"keys": sorted(k["kid"] for k in published["keys"]), "crls": sorted(by_kid)},
        at=now,
    )
    return row, created


def set_issuer_status(
    uow: UnitOfWork,
    *,
    principal: Principal,
    iss: str,
    status: str,
    reason: str,
    now: datetime | None = None,
) -> ExternalIssuer:
    """Suspend or reinstate an issuer: a suspended issuer's cards answer ``issuer_suspended``."""
    authorize(principal, "issuer.manage")
    if status not in ISSUER_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(ISSUER_STATUSES)}")
    if not reason.strip():
        raise BadRequest("a change of an issuer's status needs a reason")
    row = uow.session.get(ExternalIssuer, iss)
    if row is None:
        raise NotFound(f"no registered issuer {iss!r}")
    if row.status == status:
        raise Conflict(f"{iss} is already {status}")
    now = now or utcnow()
    row.status = status
    row.status_reason = reason.strip()
    row.updated_at = now
    record(
        uow.session,
        actor=principal,
        action=f"issuer.{'suspend' if status == 'suspended' else 'reinstate'}",
        object_type="ExternalIssuer",
        object_id=iss,
        detail={"status": status},
        at=now,
    )
    return row


def list_issuers(uow: UnitOfWork) -> Sequence[ExternalIssuer]:
    """Every registered issuer, by URL."""
    return uow.session.scalars(select(ExternalIssuer).order_by(ExternalIssuer.iss)).all()


def parse_keys(jwks: Mapping[str, Any]) -> dict[str, PublicKey]:
    """The public keys of a registered JWKS, by kid."""
    return {str(jwk["kid"]): load_public_jwk(jwk) for jwk in jwks.get("keys", [])}


def issuer_keys(row: ExternalIssuer) -> dict[str, PublicKey]:
    """A registered issuer's keys, parsed once per version of its registration."""
    cache_key = (row.iss, row.updated_at)
    with _keys_lock:
        keys = _keys_cache.get(cache_key)
        if keys is None:
            if len(_keys_cache) > 256:
                _keys_cache.clear()
            keys = _keys_cache[cache_key] = parse_keys(row.jwks)
        return keys

"""Flask extensions shared by views (decorators need them at import), initialised per app."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# No X-RateLimit-* headers on answers within the limit: writing them asks the storage twice
# more per request. A 429 carries Retry-After (registry/web.py, handle_http_exception).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def _public_limit() -> str:
    """Anonymous reads allowed per client address (``REGISTRY_PUBLIC_RATE_LIMIT``)."""
    return str(current_app.extensions["registry"].settings.public_rate_limit)


def _authenticated_caller() -> bool:
    """A valid access token; a forged or expired one is counted like no token at all."""
    from registry.errors import DomainError
    from registry.web import current_principal

    try:
        return current_principal().authenticated
    except DomainError:
        return False


# Public reads (clinic list, rulesets, revocation lists, trust list, keys, FHIR conformance
# resources, certificate downloads by holder secret, pages): one budget per address, shared.
# A caller with a valid access token is counted by its own endpoints' limits instead.
public_reads = limiter.shared_limit(
    _public_limit, scope="public-read", exempt_when=_authenticated_caller
)

"""Flask extensions shared by views (decorators need them at import), initialised per app."""

from __future__ import annotations

import functools
import time

from flask import Response, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

# No X-RateLimit-* headers on answers within the limit: writing them asks the storage twice
# more per request. A 429 carries Retry-After (retry_after_on_429).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def retry_after_on_429(response: Response) -> Response:
    """A refusal by the rate limit names when its window resets (asked of its storage then)."""
    if response.status_code == 429 and "Retry-After" not in response.headers:
        current = limiter.current_limit
        seconds = 60 if current is None else max(1, int(current.reset_at - time.time()))
        response.headers["Retry-After"] = str(seconds)
    return response


def within_shared_limit(limit: str, *, scope: str, key: str) -> bool:
    """Count one request against a shared limit, as ``limiter.shared_limit`` counts it.

    The same storage, strategy and key (client address and scope), so a route that counts here
    and one decorated with the shared limit spend one allowance. False once it is spent.
    """
    return bool(limiter.limiter.hit(_parsed(limit), key, scope))


@functools.lru_cache(maxsize=16)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


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

"""``POST /api/v1/verify`` answered by a small WSGI handler in front of the Flask app.

Verification is the registry's busiest request, and Flask, flask-smorest and the rate-limit
extension around it cost more CPU than the verification itself. The handler answers the plain
case: a JSON body of declared length, no bearer token, no query string. It does what the stack
would do for it: the request id, the same verification allowance per address (the limiter's own
storage and key, so the employer page keeps sharing it), the service call, the same JSON body
and headers, and the HTTP metrics under the route's endpoint name. Everything else, and any
request it would refuse (a 400, a 413, a 429), goes on to the Flask route in
``registry.verification.views``, which stays the documented operation of the API document,
before anything was written. An error raised by the service is answered by the app's own error
handlers, within a request context of this request.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from timeit import default_timer
from typing import Any

from flask import Flask, g, request
from prometheus_client import CollectorRegistry

from registry.auth.principal import ANONYMOUS
from registry.errors import BadRequest
from registry.extensions import within_shared_limit
from registry.logs import bind_request
from registry.operations.metrics import HttpMetrics, observe_pool
from registry.verification import service
from registry.verification.verdict import Unreadable
from registry.web import SECURITY_HEADERS, RegistryContext, request_id

PATH = "/api/v1/verify"
ENDPOINT = "verification.verify"
_JSON = "application/json"
_NOT_HERE = ("HTTP_AUTHORIZATION", "HTTP_TRANSFER_ENCODING")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class VerifyRoute:
    """The WSGI app: ``POST /api/v1/verify`` in the plain case here, the rest to ``inner``."""

    def __init__(self, app: Flask, inner: WSGIApp, *, metrics: CollectorRegistry) -> None:
        self.app = app
        self.inner = inner
        self.metrics = HttpMetrics.of(metrics)
        self.registry: RegistryContext = app.extensions["registry"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self._plain(environ):
            return self.inner(environ, start_response)
        started = default_timer()
        size = int(environ["CONTENT_LENGTH"])
        raw = environ["wsgi.input"].read(size) if size else b""
        # the stack reads the body again if it answers after all
        environ["wsgi.input"] = io.BytesIO(raw)
        settings = self.registry.settings
        presented: Any
        try:
            presented = service.presented_from_json(raw, max_depth=settings.max_json_depth)
        except Unreadable as exc:
            presented = str(exc)
        except BadRequest:
            return self.inner(environ, start_response)
        address = environ.get("REMOTE_ADDR") or "127.0.0.1"
        if not within_shared_limit(settings.verify_rate_limit, scope="verify", key=address):
            return self.inner(environ, start_response)  # the stack's 429, Retry-After and all
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        bind_request(rid)
        try:
            verification = service.verify(
                self.registry.db, presented=presented, principal=ANONYMOUS, channel="api"
            )
        except Exception as exc:  # the app's handlers answer it, as for any route
            return self._failed(environ, start_response, exc, rid=rid, started=started)
        assert verification.published is not None  # the signed receipt's document
        body = self._json(verification.published)
        start_response(
            "200 OK",
            [
                ("Content-Type", _JSON),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Request-ID", rid),
                *SECURITY_HEADERS,
            ],
        )
        self.metrics.observe(ENDPOINT, "POST", 200, default_timer() - started)
        observe_pool(self.registry.db.engine)
        return [body]

    def _plain(self, environ: dict[str, Any]) -> bool:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return False
        if environ.get("QUERY_STRING") or any(environ.get(name) for name in _NOT_HERE):
            return False
        length = environ.get("CONTENT_LENGTH") or ""
        mimetype = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
        return (
            mimetype == _JSON
            and length.isdigit()
            and int(length) <= self.registry.settings.max_body_bytes
        )

    def _json(self, document: dict[str, Any]) -> bytes:
        # what jsonify makes of it (the app's provider, compact outside debug mode)
        provider = self.app.json
        compact = getattr(provider, "compact", None)
        if compact is None:
            compact = not self.app.debug
        text = json.dumps(
            document,
            default=getattr(provider, "default", None),
            ensure_ascii=getattr(provider, "ensure_ascii", True),
            sort_keys=getattr(provider, "sort_keys", True),
            separators=(",", ":") if compact else None,
            indent=None if compact else 2,
        )
        return f"{text}\n".encode()

    def _failed(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        error: Exception,
        *,
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        """The app's answer to an error the service raised, its after-request steps included."""
        with self.app.request_context(environ):
            g.request_id = rid
            request.prom_start_time = started  # type: ignore[attr-defined]
            try:
                response = self.app.handle_user_exception(error)
            except Exception as unhandled:
                response = self.app.handle_exception(unhandled)
            response = self.app.finalize_request(response)
            return response(environ, start_response)

"""The HTTP edge shared by every blueprint: context, caller, errors, request ids."""

from __future__ import annotations

import functools
import io
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy.exc import OperationalError
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from registry.audit.service import record
from registry.auth.permissions import authorize
from registry.auth.principal import ANONYMOUS, Principal
from registry.auth.service import TokenError, authenticate
from registry.config import Settings
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.crypto.encryption import DataCipher, DecryptionError
from registry.crypto.keystore import KeyStore, SigningKeyUnavailable
from registry.db import Database
from registry.errors import (
    BadRequest,
    DomainError,
    InvalidResource,
    StoredDataUnreadable,
    Unauthorized,
)
from registry.jsonlimits import JSONHasNul, JSONNotFinite, loads_limited
from registry.logs import bind_request, get_logger

log = get_logger("registry.web")
T = TypeVar("T")
DATABASE_RETRY_AFTER = "5"  # seconds: a restarted server or a failed-over replica is back by then


@dataclass
class RegistryContext:
    """What services need from the running app: settings, database, keys, cipher."""

    settings: Settings
    db: Database
    keystore: KeyStore
    cipher: DataCipher
    index_key: bytes


def context() -> RegistryContext:
    """The registry context of the current app."""
    ctx: RegistryContext = current_app.extensions["registry"]
    return ctx


@dataclass(frozen=True)
class Published:
    """A public document's exact bytes, built once per version of the data it shows."""

    version: Any
    body: bytes
    etag: str  # strong: the same bytes have the same tag in every worker and replica
    checked_at: float = 0.0  # time.time() when its version was last confirmed


def published(
    db: Database,
    name: str,
    version: Callable[[], Any],
    build: Callable[[Any], dict[str, Any]],
    *,
    recheck_seconds: float,
) -> Published:
    """The document ``name``: as built before while its data ``version()`` is the same.

    The version is asked at most every ``recheck_seconds``; in between the document is
    answered from memory. The bytes are canonical JSON of what ``build(version)`` returns, so every
    worker that builds the same version serves the same bytes under the same strong ETag.
    """
    cached: Published | None = db.memo.get(name)
    now = time.time()  # as the key store's refresh: a moved clock moves both
    if cached is not None and 0 <= now - cached.checked_at < recheck_seconds:
        return cached
    current = version()
    if cached is None or cached.version != current:
        body = canonical_json(build(current))
        cached = Published(
            version=current, body=body, etag=f'"{sha256_hex(body)[:40]}"', checked_at=now
        )
    else:
        cached = replace(cached, checked_at=now)
    db.memo[name] = cached
    return cached


def answer_published(document: Published, *, cache_control: str) -> Response:
    """200 with the document, or 304 when the caller already holds these bytes."""
    # If-None-Match compares weakly (RFC 9110 §13.1.2): W/"tag" matches our "tag" too
    if request.if_none_match.contains_weak(document.etag.strip('"')):
        response = Response(status=304)
    else:
        response = Response(document.body, mimetype="application/json")
    response.headers["ETag"] = document.etag
    response.headers["Cache-Control"] = cache_control
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


class LimitedJSONProvider(DefaultJSONProvider):
    """Request JSON within a nesting limit, finite numbers, no NUL: else a 400, not a crash."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        settings: Settings = self._app.extensions["registry"].settings
        try:
            return loads_limited(s, max_depth=settings.max_json_depth)
        except (JSONHasNul, JSONNotFinite) as exc:
            # Flask would answer a bare 400; the caller should learn what to change
            raise BadRequest(str(exc)) from None


class LimitedParser(FlaskParser):
    """webargs parses bodies itself; route it through the app's limited JSON provider."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        return req.get_json()  # malformed or too deep: a 400 from on_json_loading_failed


class ProblemSchema(Schema):
    """Every JSON error body: status, machine-readable error, human message, request id."""

    class Meta:
        unknown = INCLUDE  # domain errors add what helps the caller (e.g. an amend link)

    status = fields.Integer(required=True)
    error = fields.String(required=True)
    message = fields.String(required=True)
    request_id = fields.String(allow_none=True)
    errors = fields.Dict(metadata={"description": "field errors of an invalid request"})


class RegistryApi(Api):
    """flask-smorest's Api, documenting our error body instead of its own."""

    ERROR_SCHEMA = ProblemSchema


class Blueprint(SmorestBlueprint):
    """The flask-smorest Blueprint with our JSON limits on request bodies."""

    ARGUMENTS_PARSER = LimitedParser()


def current_principal() -> Principal:
    """The caller of this request (anonymous without a bearer token); 401 on a bad token."""
    if "principal" not in g:
        ctx = context()
        with ctx.db.read_session() as session:
            found = authenticate(
                session,
                authorization=request.headers.get("Authorization"),
                settings=ctx.settings,
                keystore=ctx.keystore,
            )
        g.principal = found or ANONYMOUS
    principal: Principal = g.principal
    return principal


def authenticated(view: Callable[..., Any] | None = None, *, action: str | None = None) -> Any:
    """Refuse anonymous callers with 401 before the body is even parsed (services authorise).

    With ``action``, a caller whose role or scopes may never perform it gets its 403 before its
    input is validated: a role without the permission learns nothing from a 422. Which object,
    clinic or country is still the service's check.
    """
    if view is None:
        return functools.partial(authenticated, action=action)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        if not principal.authenticated:
            raise Unauthorized("this endpoint needs a bearer access token from /oauth/token")
        if action is not None:
            authorize(principal, action)
        return view(*args, **kwargs)

    manual = getattr(wrapper, "_apidoc", {}).get("manual_doc", {})
    if "security" in manual:
        return wrapper
    # the API document says which operations take a bearer token
    documented: Callable[..., Any] = SmorestBlueprint.doc(security=[{"bearer": []}])(wrapper)
    return documented


def as_caller(operation: Callable[..., T], /, **arguments: Any) -> T:
    """``operation(uow, principal=<the caller>, **arguments)`` in a unit of work it commits.

    The shape of a view that asks a service on the caller's behalf: the service authorises and
    audits, and the audit event commits with the answer."""
    with context().db.unit_of_work() as uow:
        found = operation(uow, principal=current_principal(), **arguments)
        uow.commit()
    return found


# -- operations outside flask-smorest (pages, FHIR REST, metrics) ----------------------------
ERROR_RESPONSE = {"$ref": "#/components/responses/DEFAULT_ERROR"}


def page_operation(
    summary: str,
    *,
    content: str | tuple[str, ...] = "text/html",
    not_found: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    form: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    tag: str = "pages",
) -> dict[str, Any]:
    """An OpenAPI operation for a route served outside flask-smorest (a page, FHIR, metrics).

    ``content`` is what a success answers; ``not_found`` the media type of a 404 answered by
    the route itself (a page or an OperationOutcome); any other error is our JSON problem.
    """
    types = (content,) if isinstance(content, str) else content
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": {t: _media(t) for t in types}}
    }
    if not_found is not None:
        responses["404"] = {"description": "not found", "content": {not_found: _media(not_found)}}
    responses["default"] = ERROR_RESPONSE
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": responses,
        "parameters": parameters or [],
    }
    if security is not None:  # absent: open to anyone, like the API's public reads
        operation["security"] = security
    if form is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": form}
                }
            },
        }
    return operation


def _media(media_type: str) -> dict[str, Any]:
    if media_type == "application/fhir+json":
        resource = {"resourceType": {"type": "string"}}
        return {"schema": {"type": "object", "required": ["resourceType"], "properties": resource}}
    if media_type.startswith("image/"):
        return {"schema": {"type": "string", "format": "binary"}}
    if media_type.endswith("+json"):
        return {"schema": {"type": "object"}}
    return {"schema": {"type": "string"}}


def path_parameter(name: str, description: str) -> dict[str, Any]:
    """A required string path parameter of a documented page or FHIR route."""
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def query_parameter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """An optional query parameter of a documented page or FHIR route."""
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def document_paths(app: Flask, api: Api, paths: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Add routes served outside flask-smorest to the API document, so contract tests see them."""
    rules = {}
    for rule in app.url_map.iter_rules():
        rules[re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)] = rule
    for path, operations in paths.items():
        api.spec.path(rule=rules[path], operations=operations)


# -- errors ----------------------------------------------------------------------------------
def operation_outcome(error: InvalidResource) -> dict[str, Any]:
    """A FHIR OperationOutcome listing every issue."""
    issues = []
    for issue in error.issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.location:
            entry["expression"] = [issue.location]
        issues.append(entry)
    return {"resourceType": "OperationOutcome", "issue": issues}


def _problem(status: int, error: str, message: str, **extra: Any) -> Response:
    body = {"status": status, "error": error, "message": message, **extra}
    body["request_id"] = g.get("request_id")
    response = jsonify(body)
    response.status_code = status
    return response


def handle_domain_error(error: DomainError) -> Response:
    """Map a domain error to its status and a JSON body that says what is wrong."""
    if isinstance(error, TokenError):
        oauth = jsonify(error=error.error, error_description=error.message)
        oauth.status_code = error.status
        oauth.headers["Cache-Control"] = "no-store"
        return oauth
    if isinstance(error, InvalidResource):
        response = jsonify(operation_outcome(error))
        response.status_code = error.status
        response.content_type = "application/fhir+json"
        return response
    details = {k: v for k, v in error.details.items() if v is not None}
    response = _problem(error.status, error.error, error.message, **details)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{error.message}"'
        )
    return response


def handle_unreadable(error: StoredDataUnreadable | DecryptionError) -> Response:
    """A sealed value that does not open: one integrity error, logged and audited.

    The request's transaction is rolled back; the audit event is written in one of its own.
    """
    if isinstance(error, DecryptionError):
        error = StoredDataUnreadable(
            "a stored record failed its integrity check; nothing can be read from it until the "
            "registry's operator restores it"
        )
    details = {k: v for k, v in error.details.items() if v is not None}
    log.error("stored data unreadable", **{k: str(v) for k, v in details.items()})
    ctx = context()
    try:
        with ctx.db.unit_of_work() as uow:
            record(
                uow.session,
                actor=g.get("principal") or ANONYMOUS,
                action="integrity.unreadable",
                object_type=str(details.get("object_type", "")) or None,
                object_id=str(details.get("object_id", "")) or None,
                outcome="failure",
                detail={"path": request.path, "request_id": g.get("request_id")},
            )
            uow.commit()
    except Exception:  # the answer must still be the integrity error
        log.exception("integrity failure not audited")
    return _problem(error.status, error.error, error.message, **details)


def handle_http_exception(error: HTTPException) -> Response:
    """Every werkzeug/smorest HTTP error as JSON, keeping headers such as Allow on 405."""
    status = error.code or 500
    extra: dict[str, Any] = {}
    data = getattr(error, "data", None)
    if isinstance(data, dict) and "messages" in data:
        extra["errors"] = data["messages"]
    name = (error.name or "error").lower().replace(" ", "_")
    message = error.description or error.name
    if status == 413:
        message = (
            f"request body exceeds {context().settings.max_body_bytes} bytes"
            if current_app
            else message
        )
    response = _problem(status, name, str(message), **extra)
    for key, value in error.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def handle_database_unavailable(error: OperationalError) -> Response:
    """The database went away: 503 with Retry-After; the transaction was rolled back."""
    log.error("database unavailable", error=type(error.orig or error).__name__)
    response = _problem(
        503,
        "database_unavailable",
        "the registry's database is unavailable; nothing was stored, try again shortly",
    )
    response.headers["Retry-After"] = g.retry_after = DATABASE_RETRY_AFTER
    return response


def handle_signing_key_unavailable(error: SigningKeyUnavailable) -> Response:
    """No key may sign for a purpose here (its key was compromised and the new file is not
    here yet): 503, nothing was stored; never a signature by a compromised key."""
    log.error("signing key unavailable", error=str(error))
    response = _problem(
        503,
        "signing_key_unavailable",
        "the registry cannot sign right now: its signing key is being replaced; nothing was "
        "stored, try again shortly",
    )
    response.headers["Retry-After"] = g.retry_after = DATABASE_RETRY_AFTER
    return response


def keep_retry_after(response: Response) -> Response:
    """An outage's Retry-After as the handler set it, not the rate limit window's reset.

    Registered before the rate limiter, so it runs after it: the limiter otherwise raises the
    header of every limited endpoint to its window's reset (up to a minute) on a 503 too.
    """
    retry_after = g.get("retry_after")
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def handle_unexpected(error: Exception) -> Response:
    """A bug: log it with the request id, answer 500 without internals."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error", error=type(error).__name__)
    return _problem(500, "internal_error", "an unexpected error occurred; it has been logged")


def _bound_streamed_body() -> None:
    """A chunked body (no Content-Length) over the size limit is a 413, like a declared one.

    Werkzeug cuts such a stream at the limit without a word, so the view would see truncated
    JSON and answer 422. The body is read here, at most one byte past the limit, and handed on
    with its length declared.
    """
    environ = request.environ
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    streamed = chunked or not environ.get("CONTENT_LENGTH")
    if not streamed or not environ.get("wsgi.input_terminated"):
        return  # a declared length is checked by werkzeug; an unterminated stream is empty
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream = environ["wsgi.input"]
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge()
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _refuse_nul_characters() -> None:
    """A NUL character in the path, the query string or a form is a 400 before any view runs.

    PostgreSQL text cannot hold U+0000 (it would be a 500 there and pass on SQLite); JSON bodies
    and FHIR bundles are checked where they are parsed (``registry.jsonlimits``).
    """
    where = None
    if "\x00" in request.path:
        where = "the path"
    elif any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        where = "the query string"
    elif request.mimetype in _FORM_TYPES and any(
        "\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)
    ):
        where = "the form"
    if where:
        message = f"the NUL character (%00, \\u0000) is not accepted in {where}"
        if request.endpoint == TOKEN_ENDPOINT:  # OAuth clients expect RFC 6749 errors
            raise TokenError("invalid_request", message)
        raise BadRequest(message)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TOKEN_ENDPOINT = "auth.token"


# on every answer, unless a route set its own
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def request_id(incoming: str) -> str:
    """The caller's X-Request-ID when it is a short token, else a fresh one."""
    ok = 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum()
    return incoming if ok else secrets.token_hex(8)


def init_app(app: Flask) -> None:
    """Install the JSON provider, request ids and the one error handler."""

    @app.before_request
    def _request_id() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))
        bind_request(g.request_id)
        _bound_streamed_body()
        _refuse_nul_characters()
        if request.headers.get("Authorization"):
            current_principal()  # a bad token is a 401 before anything else is looked at

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response

    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(StoredDataUnreadable, handle_unreadable)
    app.register_error_handler(DecryptionError, handle_unreadable)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(SigningKeyUnavailable, handle_signing_key_unavailable)
    app.register_error_handler(Exception, handle_unexpected)

"""Read-only FHIR: ``/fhir/metadata`` and our conformance resources (examination Bundles are
read in registry/examinations/fhir_views.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from typing import Any
from urllib.parse import urlencode

import flask
from flask import Response, request

from registry.audit import service as audit
from registry.db import utcnow
from registry.errors import BadRequest, InvalidResource, Issue
from registry.extensions import public_reads
from registry.fhir import audit_log, conformance
from registry.web import (
    context,
    current_principal,
    operation_outcome,
    page_operation,
    path_parameter,
    query_parameter,
)

# FHIR's own REST conventions (OperationOutcome errors, searchset Bundles), documented below
blp = flask.Blueprint("fhir", __name__, url_prefix="/fhir")
public_reads(blp)

FHIR_JSON = "application/fhir+json"


def _answer(resource: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(resource), status=status, content_type=FHIR_JSON)
    response.headers["Cache-Control"] = "public, max-age=300" if status == 200 else "no-store"
    return response


def _not_found(text: str) -> Response:
    return _answer(operation_outcome(InvalidResource(issues=[Issue("not-found", text)])), 404)


@blp.route("/metadata")
def metadata() -> Response:
    """The CapabilityStatement."""
    settings = context().settings
    return _answer(
        conformance.capability_statement(
            base_url=settings.base_url,
            software_version=version("registry"),
            date=utcnow().date().isoformat(),
        )
    )


@blp.route("/AuditEvent")
def audit_events() -> Response:
    """The audit log as FHIR AuditEvents: admin (all) and accreditors (their country's)."""
    ctx = context()
    principal = current_principal()
    audit_search = _audit_search(request.args)
    with ctx.db.unit_of_work() as uow:
        page = audit_log.search(
            uow.session,
            principal=principal,
            search=audit_search,
            base_url=ctx.settings.base_url,
        )
        uow.commit()
    base = f"{ctx.settings.base_url}/fhir/AuditEvent"
    links = [
        {"relation": "self", "url": f"{base}?{urlencode(list(request.args.items(multi=True)))}"}
    ]
    if page.next_after is not None:
        following = [(k, v) for k, v in request.args.items(multi=True) if k != "_after"]
        following.append(("_after", str(page.next_after)))
        links.append({"relation": "next", "url": f"{base}?{urlencode(following)}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page.resources
        ],
    }
    response = _answer(bundle)
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/AuditEvent/<resource_id>")
def audit_event(resource_id: str) -> Response:
    """One audit event as a FHIR AuditEvent: admin (any) and accreditors (their country's)."""
    ctx = context()
    principal = current_principal()
    with ctx.db.unit_of_work() as uow:
        resource = audit_log.read(
            uow.session,
            principal=principal,
            event_id=resource_id,
            base_url=ctx.settings.base_url,
        )
        uow.commit()
    response = _answer(resource)
    response.headers["Cache-Control"] = "no-store"
    return response


_DATE_PREFIXES = ("ge", "gt", "le", "lt", "eq")
_SEARCH_PARAMETERS = ("date", "action", "subtype", "agent", "entity", "_count", "_after")


def _audit_search(args: Any) -> audit_log.AuditSearch:
    """FHIR search parameters of AuditEvent: date, action, agent and entity (each value a
    comma-separated list of alternatives), _count."""
    return audit_log.AuditSearch(
        query=_audit_query(args),
        agents=tuple(_alternatives(args, "agent", _agent)),
        entities=tuple(_alternatives(args, "entity", _entity)),
    )


def _alternatives(args: Any, name: str, parse: Any) -> list[Any]:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} is given once (alternatives separated by commas)")
    found = [parse(part.strip()) for part in ",".join(values).split(",") if part.strip()]
    if values and not found:
        raise BadRequest(f"{name} names at least one value")
    if len(found) > 20:
        raise BadRequest(f"{name} names at most 20 alternatives")
    return found


def _agent(value: str) -> str:
    """An agent: the client id the event names, bare or as an identifier token system|value."""
    client = value.rsplit("|", 1)[-1]
    if not client or len(client) > 128:
        raise BadRequest("agent is a client id (at most 128 characters)")
    return client


def _entity(value: str) -> tuple[str | None, str]:
    """An entity: an object id, or Type/id (Certificate/KZ-7F3K-9QPX)."""
    object_type, _slash, object_id = value.rpartition("/")
    if not object_id or len(object_id) > 128 or len(object_type) > 64:
        raise BadRequest("entity is an object id or Type/id")
    return (object_type or None), object_id


def _audit_query(args: Any) -> audit.EventQuery:
    """FHIR search parameters of AuditEvent: date (with ge/gt/le/lt/eq), action, _count."""
    unknown = set(args) - set(_SEARCH_PARAMETERS)
    if unknown:
        raise BadRequest(
            f"AuditEvent is searched by date, action, agent, entity, _count: not {sorted(unknown)}"
        )
    since: datetime | None = None
    until: datetime | None = None
    for value in args.getlist("date"):
        prefix, text = (value[:2], value[2:]) if value[:2] in _DATE_PREFIXES else ("eq", value)
        start, end = _instant_range(text)
        if prefix in ("ge", "eq"):
            since = max(since, start) if since else start
        if prefix == "gt":
            since = max(since, end) if since else end
        if prefix in ("le", "eq"):
            until = min(until, end) if until else end
        if prefix == "lt":
            until = min(until, start) if until else start
    action = args.get("action") or args.get("subtype")
    try:
        count = int(args.get("_count", "100"))
        after = int(args.get("_after", "0"))
    except ValueError:
        raise BadRequest("_count and _after are whole numbers") from None
    if not 1 <= count <= audit.MAX_EXPORT_PAGE or after < 0:
        raise BadRequest(f"_count is 1 to {audit.MAX_EXPORT_PAGE}; _after is an event id")
    return audit.EventQuery(since=since, until=until, action=action, after_id=after, count=count)


def _instant_range(text: str) -> tuple[datetime, datetime]:
    """A FHIR date or dateTime as the half-open range of instants it covers (UTC)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"date {text[:40]!r} is not a FHIR date (YYYY-MM-DD) or dateTime"
        ) from None
    if moment.tzinfo is None:
        raise BadRequest("a dateTime in a search states its time zone")
    return moment, moment + timedelta(seconds=1)


@blp.route("/<resource_type>")
def search(resource_type: str) -> Response:
    """Every resource of a conformance type, or the one with ``?url=``."""
    if resource_type not in conformance.CONFORMANCE_TYPES:
        return _not_found(f"this server has no {resource_type} resources to search")
    ctx = context()
    resources = conformance.load(ctx.settings.profiles_dir)
    found = resources.search(resource_type, url=request.args.get("url"))
    return _answer(conformance.searchset(found, base_url=ctx.settings.base_url))


@blp.route("/<resource_type>/<resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """One conformance resource by id."""
    if resource_type not in conformance.CONFORMANCE_TYPES:
        return _not_found(f"this server has no {resource_type} resources")
    resources = conformance.load(context().settings.profiles_dir)
    resource = resources.read(resource_type, resource_id)
    if resource is None:
        return _not_found(f"no {resource_type} with id {resource_id!r}")
    return _answer(resource)


def fhir_operation(summary: str, *parameters: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A FHIR read interaction as the API document describes it."""
    return page_operation(
        summary, content=FHIR_JSON, tag="fhir", parameters=list(parameters), **options
    )


_TYPE = path_parameter("resource_type", "StructureDefinition, ValueSet, CodeSystem, ConceptMap")
OPENAPI_PATHS = {
    "/fhir/metadata": {"get": fhir_operation("The CapabilityStatement")},
    "/fhir/AuditEvent": {
        "get": fhir_operation(
            "The audit log as FHIR AuditEvents (admin: all; accreditor: its country's), in "
            "pages of _count following the next link",
            query_parameter("date", "ge/gt/le/lt/eq followed by a date or dateTime; repeatable"),
            query_parameter("action", "the registry's action, e.g. examination.read"),
            query_parameter(
                "agent",
                "who acted: a client id (or system|client id); alternatives separated by commas",
            ),
            query_parameter(
                "entity",
                "what was acted on: an object id, or Type/id such as Certificate/KZ-7F3K-9QPX; "
                "alternatives separated by commas",
            ),
            query_parameter("_count", "events per page, 1 to 1000 (100)", pattern="^[0-9]+$"),
            query_parameter("_after", "continue after this event id", pattern="^[0-9]+$"),
            security=[{"bearer": []}],
        )
    },
    "/fhir/AuditEvent/{resource_id}": {
        "get": fhir_operation(
            "One audit event as a FHIR AuditEvent (admin: any; accreditor: its country's)",
            path_parameter("resource_id", "the event's id (a whole number)"),
            security=[{"bearer": []}],
        )
    },
    "/fhir/{resource_type}": {
        "get": fhir_operation(
            "Every resource of a conformance type (a searchset Bundle), or the one with ?url=",
            _TYPE,
            query_parameter("url", "the canonical URL of one resource"),
            not_found=FHIR_JSON,
        )
    },
    "/fhir/{resource_type}/{resource_id}": {
        "get": fhir_operation(
            "One conformance resource by id",
            _TYPE,
            path_parameter("resource_id", "the resource's id"),
            not_found=FHIR_JSON,
        )
    },
}

"""Read-only FHIR: ``/fhir/metadata`` and our conformance resources (examination Bundles are
read in registry/examinations/fhir_views.py)."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import flask
from flask import Response, request

from registry.db import utcnow
from registry.errors import InvalidResource, Issue
from registry.extensions import public_reads
from registry.fhir import conformance
from registry.web import (
    context,
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

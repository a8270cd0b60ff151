"""Read-only FHIR: ``/fhir/metadata``, our conformance resources and examination Bundles."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import flask
from flask import Response, request

from registry.db import utcnow
from registry.examinations import service as examinations
from registry.extensions import public_reads
from registry.fhir import conformance
from registry.web import (
    context,
    current_principal,
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
    return _answer(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-found", "diagnostics": text}],
        },
        404,
    )


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


@blp.route("/Bundle/<examination_id>")
def examination_bundle(examination_id: str) -> Response:
    """An examination Bundle exactly as signed: the examining clinic only."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        stored, raw = examinations.read_bundle(
            uow, principal=current_principal(), examination_id=examination_id, cipher=ctx.cipher
        )
        uow.commit()
    response = Response(raw, content_type=FHIR_JSON)
    response.headers["ETag"] = f'W/"{stored.version}"'
    response.headers["Cache-Control"] = "no-store"
    return response


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


def _fhir(summary: str, *parameters: dict[str, Any], **options: Any) -> dict[str, Any]:
    return page_operation(
        summary, content=FHIR_JSON, tag="fhir", parameters=list(parameters), **options
    )


_TYPE = path_parameter("resource_type", "StructureDefinition, ValueSet, CodeSystem, ConceptMap")
OPENAPI_PATHS = {
    "/fhir/metadata": {"get": _fhir("The CapabilityStatement")},
    "/fhir/Bundle/{examination_id}": {
        "get": _fhir(
            "An examination Bundle exactly as signed: the examining clinic only",
            path_parameter("examination_id", "the registry's examination id"),
            security=[{"bearer": []}],
        )
    },
    "/fhir/{resource_type}": {
        "get": _fhir(
            "Every resource of a conformance type (a searchset Bundle), or the one with ?url=",
            _TYPE,
            query_parameter("url", "the canonical URL of one resource"),
            not_found=FHIR_JSON,
        )
    },
    "/fhir/{resource_type}/{resource_id}": {
        "get": _fhir(
            "One conformance resource by id",
            _TYPE,
            path_parameter("resource_id", "the resource's id"),
            not_found=FHIR_JSON,
        )
    },
}

"""``/fhir/Bundle/{examination id}``: an examination's Bundle through FHIR's read interaction."""

from __future__ import annotations

import flask
from flask import Response

from registry.examinations import service
from registry.extensions import public_reads
from registry.fhir.views import FHIR_JSON, fhir_operation
from registry.web import context, current_principal, path_parameter

# FHIR's REST conventions, outside the API document, beside the conformance resources of /fhir
blp = flask.Blueprint("fhir_examinations", __name__, url_prefix="/fhir")
public_reads(blp)


@blp.route("/Bundle/<examination_id>")
def examination_bundle(examination_id: str) -> Response:
    """An examination Bundle exactly as signed: the examining clinic only."""
    with context().db.unit_of_work() as uow:
        stored, raw = service.read_bundle(
            uow, principal=current_principal(), examination_id=examination_id
        )
        uow.commit()
    response = Response(raw, content_type=FHIR_JSON)
    response.headers["ETag"] = f'W/"{stored.version}"'
    response.headers["Cache-Control"] = "no-store"
    return response


OPENAPI_PATHS = {
    "/fhir/Bundle/{examination_id}": {
        "get": fhir_operation(
            "An examination Bundle exactly as signed: the examining clinic only",
            path_parameter("examination_id", "the registry's examination id"),
            security=[{"bearer": []}],
        )
    },
}

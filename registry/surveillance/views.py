"""``GET /api/v1/surveillance/extract``: protected, signed counts for ministries."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response

from registry.operations.metrics import EXTRACT_SECONDS
from registry.surveillance import service
from registry.surveillance.schemas import ExtractQuerySchema
from registry.web import (
    Blueprint,
    authenticated,
    context,
    current_principal,
    handle_domain_error,
)

blp = Blueprint(
    "surveillance",
    __name__,
    url_prefix="/api/v1/surveillance",
    description="Anonymised TB/HIV surveillance extracts with disclosure control (ministries)",
)

_FORMAT_CONTENT = {
    media.split(";")[0]: {"schema": {"type": "string"}} for media in service.FORMATS.values()
}


@blp.route("/extract")
@authenticated(action="surveillance.read")
@blp.arguments(ExtractQuerySchema, location="query")
@blp.doc(
    responses={
        "200": {
            "description": (
                "The extract. X-Extract-Signature: detached JWS (registry document key, "
                "/.well-known/registry-keys.json, purpose document) over the body; "
                "X-Disclosure-Control: the method."
            ),
            "content": _FORMAT_CONTENT,
            "headers": {
                "Warning": {
                    "description": (
                        '299 - "measure code hiv_confirmed is deprecated; use hiv-confirmed", '
                        "once for each former measure spelling the request used"
                    ),
                    "schema": {"type": "string"},
                }
            },
        },
        "202": {
            "description": (
                "The year's suppression pattern for the current data is not computed yet (the "
                "surveillance worker computes it in the background). Retry-After: seconds to "
                "wait; the JSON body names the data version and k. Nothing is released."
            ),
        },
    }
)
def extract(query: dict[str, Any]) -> Response:
    """Counts by period and the chosen dimensions, small counts suppressed; never a line list."""
    ctx = context()
    started = time.perf_counter()
    try:
        with ctx.db.unit_of_work() as uow:
            release = service.build_extract(
                uow,
                principal=current_principal(),
                query=service.ExtractQuery(**query),
            )
            uow.commit()
    except service.ProtectionPending as pending:
        response = handle_domain_error(pending)
        response.headers["Retry-After"] = str(pending.details["retry_after"])
        response.headers["Cache-Control"] = "no-store"
        return response
    EXTRACT_SECONDS.labels(query["format"]).observe(time.perf_counter() - started)
    response = Response(release.body, content_type=release.media_type)
    response.headers["X-Extract-Signature"] = release.signature
    response.headers["X-Disclosure-Control"] = json.dumps(dict(release.method))
    response.headers["X-Data-Version"] = release.version
    response.headers["Content-Disposition"] = f'attachment; filename="{release.filename}"'
    response.headers["Cache-Control"] = "no-store"
    for warning in release.warnings:  # RFC 9111 retired Warning, but clients still show 299
        response.headers.add("Warning", f'299 - "{warning}"')
    return response

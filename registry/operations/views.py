"""``/healthz``, ``/readyz`` and ``/.well-known/jwks.json``."""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import text

from registry.web import Blueprint, context

blp = Blueprint("operations", __name__, description="Health, readiness and published keys")


@blp.route("/healthz")
@blp.doc(summary="The process is alive")
def healthz() -> Response:
    return jsonify(status="ok")


@blp.route("/readyz")
@blp.doc(summary="The database answers and the registry's keys are loaded")
def readyz() -> Response:
    ctx = context()
    checks: dict[str, str] = {}
    try:
        with ctx.db.read_session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, it never raises
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        ctx.keystore.active("certificate")
        ctx.keystore.active("token")
        checks["keys"] = "ok"
    except Exception as exc:
        checks["keys"] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


@blp.route("/.well-known/jwks.json")
@blp.doc(summary="The registry's public signing keys (ES256, kid = RFC 7638 thumbprint)")
def jwks() -> Response:
    response = jsonify(context().keystore.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response

"""``/healthz``, ``/readyz``, ``/.well-known/jwks.json`` and ``/.well-known/registry-keys.json``."""

from __future__ import annotations

from typing import Any

import flask
from flask import Response, current_app, jsonify
from marshmallow import INCLUDE, Schema, fields
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select, text

from registry.certificates.models import CertificateRevocation
from registry.certificates.revocation import crl_versions
from registry.crypto.keys import b64url
from registry.crypto.keystore import KEY_PURPOSES
from registry.db import utcnow
from registry.extensions import public_reads
from registry.operations.metrics import exposition
from registry.transparency.sequencer import backlog
from registry.transparency.service import log_signer
from registry.web import Blueprint, Published, answer_published, context, page_operation, published

_LATEST_REVOCATION = (
    select(CertificateRevocation.id).order_by(CertificateRevocation.id.desc()).limit(1)
)


class HealthSchema(Schema):
    status = fields.String()


class LogBacklogSchema(Schema):
    pending = fields.Integer(metadata={"description": "log entries not yet in the tree"})
    oldest_seconds = fields.Float(allow_none=True)


class ReadinessSchema(Schema):
    status = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    log = fields.Nested(LogBacklogSchema)


class JWKSchema(Schema):
    class Meta:
        unknown = INCLUDE

    kty = fields.String()
    crv = fields.String()
    x = fields.String()
    y = fields.String()
    kid = fields.String()
    use = fields.String()
    alg = fields.String()
    crlVersion = fields.Integer()


class JWKSetSchema(Schema):
    keys = fields.List(fields.Nested(JWKSchema))


class RegistryJWKSchema(Schema):
    class Meta:
        unknown = INCLUDE

    kty = fields.String()
    crv = fields.String()
    x = fields.String()
    y = fields.String()
    kid = fields.String()
    alg = fields.String()
    key_ops = fields.List(fields.String())
    purpose = fields.String(
        metadata={
            "description": "what the key signs: "
            + "; ".join(f"{name}: {kind.signs}" for name, kind in KEY_PURPOSES.items())
        }
    )
    status = fields.String(
        metadata={"description": "active (signs now) or retired (only verifies what it signed)"}
    )


class RegistryKeySetSchema(Schema):
    keys = fields.List(fields.Nested(RegistryJWKSchema))


blp = Blueprint("operations", __name__, description="Health, readiness and published keys")


@blp.route("/healthz")
@blp.doc(summary="The process is alive")
@blp.response(200, HealthSchema)
def healthz() -> Response:
    return jsonify(status="ok")


@blp.route("/readyz")
@blp.doc(summary="The database answers and the registry's keys are loaded; the log's backlog")
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="not ready")
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
        for purpose in KEY_PURPOSES:
            ctx.keystore.active(purpose)
        checks["keys"] = "ok"
    except Exception as exc:
        checks["keys"] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if checks["database"] == "ok":
        # the sequencer's backlog: writes go on without it, so it is reported, not a failure
        pending, oldest = backlog(ctx.db)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else None
        body["log"] = {"pending": pending, "oldest_seconds": age}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


# not part of the API document: a plain Flask blueprint
pages = flask.Blueprint("operations_pages", __name__)


@pages.route("/metrics")
def metrics() -> Response:
    """Prometheus metrics (text exposition format)."""
    body = exposition(current_app.extensions["registry.metrics"])
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


@blp.route("/.well-known/jwks.json")
@public_reads
@blp.doc(
    summary="The SMART Health Cards issuer keys: the certificate-signing keys only",
    description="Active and retired certificate keys (ES256, kid = RFC 7638 thumbprint), each "
    "with the crlVersion of its revocation list; never a compromised key, never a key that "
    "signs anything but cards (those are in /.well-known/registry-keys.json).",
)
@blp.response(200, JWKSetSchema)
def jwks() -> Response:
    ctx = context()
    with ctx.db.reading() as uow:
        # the keys as last read, and the newest revocation: one statement on an index
        def version() -> Any:
            return (ctx.keystore.version(), uow.session.scalar(_LATEST_REVOCATION))

        def build(_version: Any) -> dict[str, Any]:
            document = ctx.keystore.issuer_key_set()
            versions = crl_versions(uow)
            # SMART Health Cards: every certificate key announces its list's ctr (empty too).
            for key in document["keys"]:
                if key["kid"] in versions:
                    key["crlVersion"] = versions[key["kid"]]
            return document

        recheck = ctx.settings.published_recheck_seconds
        return _published(published(ctx.db, "jwks", version, build, recheck_seconds=recheck))


@blp.route("/.well-known/registry-keys.json")
@public_reads
@blp.doc(
    summary="Every registry key that verifies, each with its purpose",
    description="Active and retired keys of every purpose (never a compromised one), each "
    "with `purpose` and `key_ops: [verify]`. A verifier takes the keys of the purpose it "
    "checks: `document` for verification receipts, trust lists and surveillance extracts, "
    "`token` for access tokens, `certificate` for cards (also in /.well-known/jwks.json).",
)
@blp.response(200, RegistryKeySetSchema)
def registry_keys() -> Response:
    ctx = context()
    document = published(
        ctx.db,
        "registry-keys",
        ctx.keystore.version,
        _registry_keys,
        recheck_seconds=ctx.settings.published_recheck_seconds,
    )
    return _published(document)


def _registry_keys(_version: Any) -> dict[str, Any]:
    ctx = context()
    document = ctx.keystore.purpose_key_set()
    # the transparency log's Ed25519 note key, as a JWK and as the note verifier key
    signer = log_signer(ctx.settings, ctx.keystore)
    verifier = signer.verifier
    document["keys"].append(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(verifier.raw),
            "kid": f"{verifier.id:08x}",
            "use": "sig",
            "alg": "EdDSA",
            "key_ops": ["verify"],
            "purpose": "log",
            "signs": "transparency-log checkpoints (c2sp.org/signed-note)",
            "note_verifier_key": verifier.vkey(),
        }
    )
    return document


def _published(document: Published) -> Response:
    return answer_published(document, cache_control="public, max-age=300")


OPENAPI_PATHS = {
    "/metrics": {
        "get": page_operation(
            "Prometheus metrics (text exposition format)",
            content=CONTENT_TYPE_LATEST.split(";")[0],
            tag="operations",
        )
    }
}

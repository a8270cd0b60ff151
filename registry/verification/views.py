"""``/api/v1/verify``, ``/api/v1/trust-list`` and ``/api/v1/authority/examinations/{id}``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from registry.extensions import limiter, public_reads
from registry.verification import authority, service, trustlist
from registry.verification.schemas import (
    AuthorityExaminationSchema,
    AuthorityQuerySchema,
    TrustListSchema,
    VerificationSchema,
    VerifyRequestSchema,
)
from registry.verification.verdict import Unreadable
from registry.web import (
    Blueprint,
    answer_published,
    authenticated,
    context,
    current_principal,
    published,
)

blp = Blueprint(
    "verification",
    __name__,
    description="Verify certificates (anyone), the offline trust list, the authority view",
)

VERIFY_BODY = {
    "requestBody": {
        "required": True,
        "description": 'One of {"qr": "shc:/…"}, {"jws": "…"}, or {"certificate_id": "…", '
        '"birth_date": "YYYY-MM-DD"}, each optionally with "for_destination": "RU" (the '
        "country the verifier checks for). Anything else is answered 200 with result "
        '"malformed"; a for_destination that is not a two-letter country code is answered 400.',
        "content": {"application/json": {"schema": VerifyRequestSchema}},
    }
}


@blp.after_request
def _private(response: Response) -> Response:
    # Answers name people; only the trust list may sit in a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# Verification works anonymously; an employer's or authority's token names the verifier.
_ANYONE: list[dict[str, list[str]]] = [{"bearer": []}, {}]


def verify_limit() -> str:
    """Verifications allowed per client address (``REGISTRY_VERIFY_RATE_LIMIT``)."""
    return context().settings.verify_rate_limit


@blp.route("/api/v1/verify", methods=["POST"])
@limiter.shared_limit(verify_limit, scope="verify")
@blp.doc(security=_ANYONE, **VERIFY_BODY)
@blp.response(200, VerificationSchema)
@blp.alt_response(400, description="for_destination is not an ISO 3166-1 alpha-2 code")
@blp.alt_response(429, description="too many verifications from this address; see Retry-After")
def verify() -> Response:
    """Verify a certificate: QR text, a card's JWS, or certificate number and birth date."""
    ctx = context()
    presented: Any
    try:
        presented = service.presented_from_json(
            request.get_data(cache=False), max_depth=ctx.settings.max_json_depth
        )
    except Unreadable as exc:
        presented = str(exc)
    verification = service.verify(
        ctx.db,
        presented=presented,
        principal=current_principal(),
        channel="api",
    )
    # the schema's dump, made once and signed as the receipt: the body is exactly that
    return jsonify(verification.published)


@blp.route("/api/v1/trust-list")
@public_reads
@blp.response(200, TrustListSchema)
def trust_list() -> Response:
    """The signed trust list for offline verification: issuers, clinics, revocation lists."""
    ctx = context()
    with ctx.db.reading() as uow:
        # one cheap statement now and then; the list is built and signed once per data version
        def version() -> trustlist.DataVersion:
            return trustlist.data_version(uow.session, ctx.keystore)

        def build(version: trustlist.DataVersion) -> dict[str, Any]:
            signed = trustlist.trust_list(uow, version=version)
            return dict(TrustListSchema().dump(signed))

        document = published(
            ctx.db,
            "trust-list",
            version,
            build,
            recheck_seconds=ctx.settings.published_recheck_seconds,
        )
    return answer_published(document, cache_control="public, max-age=300")


@blp.route("/api/v1/authority/examinations/<examination_id>")
@authenticated(action="authority.read")
@blp.arguments(AuthorityQuerySchema, location="query")
@blp.response(200, AuthorityExaminationSchema)
def authority_examination(query: dict[str, Any], examination_id: str) -> authority.AuthorityRead:
    """The tests the authority's own country requires, with outcomes; purpose of use audited."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        read = authority.examination_for_authority(
            uow,
            principal=current_principal(),
            examination_id=examination_id,
            purpose_of_use=query["purpose_of_use"],
        )
        uow.commit()
    return read

"""``/api/v1/rulesets``, ``/api/v1/certificates`` and ``/.well-known/crl/{kid}.json``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Response, jsonify

from registry.certificates import service
from registry.certificates.models import Certificate, RulesetVersion
from registry.certificates.schemas import (
    CertificateSchema,
    ExtensionRequestSchema,
    ExtensionResultSchema,
    HolderQuerySchema,
    PdfQuerySchema,
    RevokeSchema,
    RulesetSchema,
)
from registry.db import utcnow
from registry.extensions import public_reads
from registry.web import Blueprint, authenticated, context, current_principal

rulesets_blp = Blueprint(
    "rulesets",
    __name__,
    url_prefix="/api/v1/rulesets",
    description="Destination rulesets: what each destination requires, every published version",
)
blp = Blueprint(
    "certificates",
    __name__,
    url_prefix="/api/v1/certificates",
    description="Certificates: status, SMART Health Card, QR, printable PDF, revocation",
)
crl_blp = Blueprint(
    "revocation",
    __name__,
    description="SMART Health Cards revocation lists of the registry's certificate keys",
)

for public in (rulesets_blp, blp, crl_blp):
    public_reads(public)

# Downloads and reads take the issuing clinic's bearer token, or the holder secret as ?h=.
_CLINIC_OR_HOLDER: list[dict[str, list[str]]] = [{"bearer": []}, {}]


# -- rulesets --------------------------------------------------------------------------------
@rulesets_blp.route("")
@rulesets_blp.response(200, RulesetSchema(many=True))
def list_rulesets() -> Sequence[RulesetVersion]:
    """Every published version of every destination's ruleset."""
    with context().db.reading() as uow:
        return service.list_rulesets(uow)


@rulesets_blp.route("/<destination>")
@rulesets_blp.response(200, RulesetSchema(many=True))
def destination_rulesets(destination: str) -> Sequence[RulesetVersion]:
    """Every published version of one destination's ruleset, oldest first."""
    with context().db.reading() as uow:
        return service.list_rulesets(uow, destination=destination)


@rulesets_blp.route("/<destination>/extensions", methods=["POST"])
@authenticated(action="ruleset.manage")
@rulesets_blp.arguments(ExtensionRequestSchema)
@rulesets_blp.response(201, ExtensionResultSchema)
def extend_validity(body: dict[str, Any], destination: str) -> service.Extension:
    """Extend validity for everyone (administrator): a new version; lengthened cards re-signed."""
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        result = service.extend_validity(
            uow,
            principal=current_principal(),
            destination=destination,
            now=utcnow(),
            **body,
        )
        uow.commit()
        return result


# -- certificates ----------------------------------------------------------------------------
@blp.route("/<certificate_id>")
@blp.arguments(HolderQuerySchema, location="query")
@blp.response(200, CertificateSchema)
@blp.doc(security=_CLINIC_OR_HOLDER)
def get_certificate(query: dict[str, Any], certificate_id: str) -> Certificate:
    """A certificate's status, destination, purpose and validity (never a result)."""
    with context().db.unit_of_work() as uow:
        certificate = service.get_certificate(
            uow,
            principal=current_principal(),
            certificate_id=certificate_id,
            holder_secret=query.get("h"),
        )
        uow.commit()
        return certificate


@blp.route("/<certificate_id>/revoke", methods=["POST"])
@authenticated(action="certificate.revoke")
@blp.arguments(RevokeSchema)
@blp.response(200, CertificateSchema)
def revoke(body: dict[str, Any], certificate_id: str) -> Certificate:
    """Revoke a certificate, with a reason (its clinic, the clinic's accreditor, admin)."""
    with context().db.unit_of_work() as uow:
        certificate = service.revoke(
            uow,
            principal=current_principal(),
            certificate_id=certificate_id,
            reason=body["reason"],
            now=utcnow(),
        )
        uow.commit()
        return certificate


def _download(certificate_id: str, kind: str, query: dict[str, Any]) -> Response:
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        download = service.download(
            uow,
            principal=current_principal(),
            certificate_id=certificate_id,
            kind=kind,
            holder_secret=query.get("h"),
            language=query.get("lang"),
            paper=query.get("paper", "A5"),
        )
        uow.commit()
    response = Response(download.content, mimetype=download.media_type)
    disposition = "inline" if kind != "card" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{download.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/<certificate_id>/qr.svg")
@blp.arguments(HolderQuerySchema, location="query")
@blp.doc(security=_CLINIC_OR_HOLDER)
def qr_svg(query: dict[str, Any], certificate_id: str) -> Response:
    """The certificate's SMART Health Card as one QR code, SVG."""
    return _download(certificate_id, "qr.svg", query)


@blp.route("/<certificate_id>/qr.png")
@blp.arguments(HolderQuerySchema, location="query")
@blp.doc(security=_CLINIC_OR_HOLDER)
def qr_png(query: dict[str, Any], certificate_id: str) -> Response:
    """The certificate's SMART Health Card as one QR code, PNG."""
    return _download(certificate_id, "qr.png", query)


@blp.route("/<certificate_id>/card.smart-health-card")
@blp.arguments(HolderQuerySchema, location="query")
@blp.doc(security=_CLINIC_OR_HOLDER)
def health_card_file(query: dict[str, Any], certificate_id: str) -> Response:
    """The certificate's SMART Health Card file (application/smart-health-card)."""
    return _download(certificate_id, "card", query)


@blp.route("/<certificate_id>/certificate.pdf")
@blp.arguments(PdfQuerySchema, location="query")
@blp.doc(security=_CLINIC_OR_HOLDER)
def certificate_pdf(query: dict[str, Any], certificate_id: str) -> Response:
    """The printable certificate in the holder's language and Russian (?lang=, ?paper=A4)."""
    return _download(certificate_id, "pdf", query)


@blp.route("/<certificate_id>/holder-slip.pdf")
@blp.arguments(PdfQuerySchema, location="query")
@blp.doc(security=_CLINIC_OR_HOLDER)
def holder_slip_pdf(query: dict[str, Any], certificate_id: str) -> Response:
    """The holder slip: the private holder link and recovery code, for the holder alone."""
    return _download(certificate_id, "slip", query)


# -- revocation lists ------------------------------------------------------------------------
@crl_blp.route("/.well-known/crl/<kid>.json")
@crl_blp.doc(summary="The revocation list of one certificate key (method rid)")
def revocation_list(kid: str) -> Response:
    ctx = context()
    with ctx.db.reading() as uow:
        document = service.crl(uow, kid=kid)
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response

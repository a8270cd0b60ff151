"""The employer page ``/verify`` (installable, works offline), receipts, the holder page
``/h/<secret>`` with its recovery form ``/h``, and the verified holder's photo.

Pages are rendered on the server in the chosen language. Scripts are files of ours: the QR
reader (camera or uploaded photo) and the offline verifier, which checks a scanned card in the
browser against the signed trust list when the network is gone. A scan checked online is sent
as the same form a person can fill in by hand, and the verdict is put into the page so the
camera keeps running. No inline script or style: the Content-Security-Policy forbids both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
from flask import Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from registry.certificates.holder_page import holder_page as holder_page_of
from registry.certificates.holder_page import recover_holder_link
from registry.certificates.labels import COUNTRIES, DESTINATIONS, PURPOSES
from registry.db import utcnow
from registry.errors import BadRequest, NotFound
from registry.extensions import limiter
from registry.pages import LANGUAGES, choose_language, page_headers
from registry.pages import init_app as init_pages
from registry.verification import receipts, service
from registry.verification.verdict import Unreadable, Verification
from registry.verification.views import verify_limit
from registry.web import context, current_principal, page_operation, path_parameter, query_parameter

STATIC = Path(__file__).resolve().parent.parent / "static" / "verification"

# HTML pages, not part of the API document: a plain Flask blueprint
blp = flask.Blueprint("verification_pages", __name__)


@blp.record_once
def _setup(state: Any) -> None:
    init_pages(state.app)


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    return page_headers(response)


def _names(language: str) -> dict[str, Any]:
    return {
        "languages": LANGUAGES,
        "countries": COUNTRIES.get(language, COUNTRIES["en"]),
        "purposes": PURPOSES.get(language, PURPOSES["en"]),
        "destinations": DESTINATIONS,
    }


def _offline_strings() -> dict[str, str]:
    """The words the offline verifier shows, in the page's language ({…} filled in by it)."""
    return {
        "valid": _("Meets the requirements of %(country)s", country="{country}"),
        "purpose": _("Purpose: %(purpose)s", purpose="{purpose}"),
        "valid_advice": _(
            "Compare the photo, name, date of birth and document number with the person in "
            "front of you."
        ),
        "other": _("Not valid for %(country)s", country="{country}"),
        "other_reason": _(
            "This certificate is valid for %(country)s (%(purpose)s), not for %(wanted)s.",
            country="{country}",
            purpose="{purpose}",
            wanted="{wanted}",
        ),
        "expired": _("Certificate expired"),
        "expired_reason": _("It was valid until %(day)s.", day="{day}"),
        "not_yet_valid": _("Not yet valid"),
        "not_yet_valid_reason": _("Valid from %(day)s.", day="{day}"),
        "revoked": _("Certificate revoked"),
        "revoked_reason": _("The clinic or the registry revoked this certificate."),
        "superseded": _("Certificate replaced"),
        "superseded_reason": _(
            "The clinic corrected the examination record and issued a new certificate."
        ),
        "do_not_accept": _("Do not accept it."),
        "invalid_signature": _("Forged or altered"),
        "invalid_signature_reason": _(
            "The signature does not match: this code was forged or changed."
        ),
        "untrusted_issuer": _("Unknown issuer"),
        "untrusted_issuer_reason": _(
            "This code was not issued by the registry or a trusted partner."
        ),
        "issuer_suspended": _("Issuer suspended"),
        "issuer_suspended_reason": _(
            "The clinic that examined the holder is suspended or has lost its accreditation."
        ),
        "malformed": _("Could not read the code"),
        "malformed_reason": _(
            "The code could not be read as a certificate. Scan it again, or type the "
            "certificate number."
        ),
        "other_card": _("Not an examination certificate"),
        "other_card_reason": _("This is a genuine health card of another kind."),
        "checked_offline": _(
            "Checked on this device without the network, with revocation data from %(when)s "
            "(%(age)s old).",
            when="{when}",
            age="{age}",
        ),
        "ready": _(
            "Works offline: revocation data from %(when)s (%(age)s old).",
            when="{when}",
            age="{age}",
        ),
        "typed_offline": _(
            "A typed number can only be checked with the network. Scan the QR code instead: it "
            "is checked on this device."
        ),
        "no_trust_list": _(
            "No network, and this device has not yet saved the list of trusted issuers. Open "
            "this page once with the network."
        ),
        "minutes": _("%(n)s min", n="{n}"),
        "hours": _("%(n)s h", n="{n}"),
        "days": _("%(n)s days", n="{n}"),
    }


def _form_page(language: str) -> str:
    ctx = context()
    keys = [key.public_jwk() for key in ctx.keystore.keys("document")]
    return render_template(
        "verification/verify.html",
        lang=language,
        registry=ctx.settings.base_url,
        document_keys=keys,
        offline_strings=_offline_strings(),
        **_names(language),
    )


def _page_photo(verification: Verification) -> str | None:
    """The photo's address on this site (the API answer gives it under the public base URL)."""
    holder = verification.holder
    if holder is None or holder.photo_url is None:
        return None
    return "/verify/photo/" + holder.photo_url.rsplit("/", 1)[-1]


@blp.route("/verify", methods=["GET"])
def verify_page() -> str:
    """The employer's page: scan or type a certificate, see the verdict."""
    language = choose_language(request.args.get("lang"))
    return _form_page(language)


@blp.route("/verify", methods=["POST"])
@limiter.shared_limit(verify_limit, scope="verify")
def verify_submit() -> str:
    """The employer's page after a check: the verdict and whom to compare."""
    language = choose_language(request.form.get("lang"))
    ctx = context()
    presented: Any
    try:
        presented = service.presented_from_fields(request.form.to_dict())
    except Unreadable as exc:
        presented = str(exc)
    verification = service.verify(
        ctx.db,
        presented=presented,
        principal=current_principal(),
        channel="page",
    )
    # A scan checked while the camera runs: only the verdict, for the page to show in place.
    template = "_verdict" if request.form.get("partial") == "1" else "verify"
    return render_template(
        f"verification/{template}.html",
        lang=language,
        verification=verification,
        photo=_page_photo(verification),
        **_names(language),
    )


@blp.route("/verify/photo/<token>")
def photo(token: str) -> Response:
    """The verified holder's photo, for a few minutes after the check."""
    ctx = context()
    found = service.photo(ctx.db, token=token, cipher=ctx.cipher, principal=current_principal())
    response = Response(found.content, mimetype=found.media_type)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/verify/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest that makes the verification page installable."""
    language = choose_language(request.args.get("lang"))
    document = {
        "name": _("Check a medical examination certificate"),
        "short_name": _("Check certificate"),
        "lang": language,
        "start_url": url_for("verification_pages.verify_page", lang=language),
        "scope": "/verify",
        "display": "standalone",
        "background_color": "#f3f5f7",
        "theme_color": "#0b5cad",
        "icons": [
            {
                "src": url_for("static", filename="verification/icon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            },
            {
                "src": url_for("static", filename="verification/icon-512.png"),
                "sizes": "512x512",
                "type": "image/png",
            },
        ],
    }
    response = Response(
        json.dumps(document, ensure_ascii=False), mimetype="application/manifest+json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.route("/verify/sw.js")
def service_worker() -> Response:
    """The service worker that keeps the verification page, its scripts and the trust list."""
    response = Response((STATIC / "sw.js").read_bytes(), mimetype="text/javascript")
    # served under /verify/, it controls /verify itself and the pages below it
    response.headers["Service-Worker-Allowed"] = "/verify"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _receipt_answer(language: str, text: str | None, *, download: bool) -> Response:
    ctx = context()
    check = receipts.check_receipt(text, keystore=ctx.keystore) if text is not None else None
    body = render_template(
        "verification/receipt.html",
        lang=language,
        check=check,
        download=download,
        **_names(language),
    )
    # a receipt that is not genuine is an answer of the page, not an error of the request
    response = Response(body, mimetype="text/html")
    if download and check is not None and check.genuine:
        name = (check.statement.get("certificate") or {}).get("id") or "check"
        response.headers["Content-Disposition"] = (
            f'attachment; filename="verification-receipt-{name}.html"'
        )
    return response


@blp.route("/verify/receipt", methods=["GET"])
def receipt_page() -> Response:
    """Check a verification receipt: paste it or upload a saved receipt."""
    return _receipt_answer(choose_language(request.args.get("lang")), None, download=False)


@blp.route("/verify/receipt", methods=["POST"])
@limiter.shared_limit(verify_limit, scope="verify")
def receipt_submit() -> Response:
    """A receipt, shown readable and checked: signed by this registry, and what it states."""
    language = choose_language(request.form.get("lang"))
    text = request.form.get("receipt") or ""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read(receipts.MAX_RECEIPT_BYTES + 1)
        text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise BadRequest("send a receipt: paste its text or upload the saved receipt file")
    return _receipt_answer(language, text, download=request.form.get("download") == "1")


@blp.route("/h", methods=["GET"])
def holder_recovery_page() -> str:
    """The holder who lost the slip: certificate number, birth date and recovery code."""
    language = choose_language(request.args.get("lang"))
    return render_template(
        "verification/recover.html", lang=language, refused=False, **_names(language)
    )


@blp.route("/h", methods=["POST"])
@limiter.shared_limit(verify_limit, scope="holder-recovery")
def holder_recovery() -> ResponseReturnValue:
    """Reopen the holder page; every wrong detail gets the same answer, and each try is audited."""
    language = choose_language(request.form.get("lang"))
    ctx = context()
    with ctx.db.unit_of_work() as uow:
        secret = recover_holder_link(
            uow,
            certificate_id=request.form.get("certificate_id", ""),
            birth_date=request.form.get("birth_date", ""),
            code=request.form.get("recovery_code", ""),
        )
        uow.commit()
    if secret is not None:
        return redirect(
            url_for("verification_pages.holder_page", secret=secret, lang=language), 303
        )
    body = render_template(
        "verification/recover.html",
        lang=language,
        refused=True,
        **_names(language),
    )
    return Response(body, status=404, mimetype="text/html")


@blp.route("/h/<secret>")
@limiter.shared_limit(verify_limit, scope="holder")
def holder_page(secret: str) -> Response:
    """The holder's page: own certificates, downloads, who verified them."""
    ctx = context()
    try:
        log_page = int(request.args.get("page", "1"))
    except ValueError:
        raise BadRequest("page must be a whole number, 1 or more") from None
    if log_page < 1:
        raise BadRequest("page must be a whole number, 1 or more")
    try:
        with ctx.db.unit_of_work() as uow:
            page = holder_page_of(uow, secret=secret, log_page=log_page)
            uow.commit()
    except NotFound:
        language = choose_language(request.args.get("lang"))
        body = render_template(
            "verification/holder.html", lang=language, page=None, secret=None, **_names(language)
        )
        response = Response(body, status=404, mimetype="text/html")
    else:
        language = choose_language(request.args.get("lang") or page.language)
        body = render_template(
            "verification/holder.html",
            lang=language,
            page=page,
            secret=secret,
            today=utcnow().date(),
            **_names(language),
        )
        response = Response(body, mimetype="text/html")
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


TOKEN_OR_ANYONE: list[dict[str, list[str]]] = [
    {"bearer": []},
    {},
]  # an employer's or authority's token, or none
_LANG = query_parameter("lang", "language of the page (en, ru, kk, ky, tg, uz, tk)")
OPENAPI_PATHS = {
    "/verify": {
        "get": page_operation("The employer's verification page", parameters=[_LANG]),
        "post": page_operation(
            "The verification page after a check: the verdict and whom to compare",
            security=TOKEN_OR_ANYONE,
            form={
                "qr": {"type": "string", "description": "the QR code's text (shc:/…)"},
                "jws": {"type": "string", "description": "a card's compact JWS"},
                "certificate_id": {"type": "string", "example": "KZ-7F3K-9QPX"},
                "birth_date": {"type": "string", "example": "1991-03-14"},
                "for_destination": {"type": "string", "example": "RU"},
                "partial": {"type": "string", "enum": ["1"], "description": "the verdict only"},
                "lang": {"type": "string"},
            },
        ),
    },
    "/verify/photo/{token}": {
        "get": page_operation(
            "The verified holder's photo, for a few minutes after the check",
            content=("image/jpeg", "image/png"),
            security=TOKEN_OR_ANYONE,
            parameters=[path_parameter("token", "the photo address a verification gave")],
        )
    },
    "/verify/manifest.webmanifest": {
        "get": page_operation(
            "The web app manifest of the installable verification page",
            content="application/manifest+json",
            parameters=[_LANG],
        )
    },
    "/verify/sw.js": {
        "get": page_operation(
            "The service worker that lets the verification page work offline",
            content="text/javascript",
        )
    },
    "/verify/receipt": {
        "get": page_operation("Check a verification receipt: paste or upload", parameters=[_LANG]),
        "post": page_operation(
            "A verification receipt shown readable and checked against the registry's keys",
            form={
                "receipt": {"type": "string", "description": "the receipt's JWS, or its page"},
                "file": {"type": "string", "format": "binary", "description": "a saved receipt"},
                "download": {"type": "string", "enum": ["1"], "description": "as a file"},
                "lang": {"type": "string"},
            },
        ),
    },
    "/h": {
        "get": page_operation("Reopen the holder page without the slip's link", parameters=[_LANG]),
        "post": page_operation(
            "Reopen the holder page: 303 to it for the right details, 404 (the same page for "
            "every wrong detail) otherwise",
            not_found="text/html",
            form={
                "certificate_id": {"type": "string", "example": "KZ-7F3K-9QPX"},
                "birth_date": {"type": "string", "example": "1991-03-14"},
                "recovery_code": {"type": "string", "example": "7F3K-9QPX"},
                "lang": {"type": "string"},
            },
        ),
    },
    "/h/{secret}": {
        "get": page_operation(
            "The holder's page: own certificates, downloads, who verified them",
            not_found="text/html",
            parameters=[
                path_parameter("secret", "the holder link's secret"),
                _LANG,
                query_parameter("page", "the page of the check log, newest first (10 a page)"),
            ],
        )
    },
}

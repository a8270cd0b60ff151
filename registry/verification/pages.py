"""The employer page ``/verify``, the holder page ``/h/<secret>`` and the verified holder's photo.

Pages are rendered on the server in the chosen language; the only script is the QR reader
(camera or uploaded photo), which fills in the scanned text and submits the same form a person
can fill in by hand. No inline script or style: the Content-Security-Policy forbids both.
"""

from __future__ import annotations

from typing import Any

import flask
from flask import Response, render_template, request

from registry.certificates.holder_page import holder_page as holder_page_of
from registry.certificates.labels import COUNTRIES, PURPOSES
from registry.db import utcnow
from registry.errors import NotFound
from registry.extensions import limiter
from registry.pages import LANGUAGES, choose_language, page_headers
from registry.pages import init_app as init_pages
from registry.verification import service
from registry.verification.verdict import Unreadable, Verification
from registry.verification.views import verify_limit
from registry.web import context, current_principal, page_operation, path_parameter, query_parameter

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
    }


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
    return render_template("verification/verify.html", lang=language, **_names(language))


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
    return render_template(
        "verification/verify.html",
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


@blp.route("/h/<secret>")
@limiter.shared_limit(verify_limit, scope="holder")
def holder_page(secret: str) -> Response:
    """The holder's page: own certificates, downloads, who verified them."""
    ctx = context()
    try:
        with ctx.db.unit_of_work() as uow:
            page = holder_page_of(uow, secret=secret)
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
    "/h/{secret}": {
        "get": page_operation(
            "The holder's page: own certificates, downloads, who verified them",
            not_found="text/html",
            parameters=[path_parameter("secret", "the holder link's secret"), _LANG],
        )
    },
}

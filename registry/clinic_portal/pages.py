"""The clinic portal's pages: shells in the clinic's language, filled by the browser over the API.

The pages hold no examination. In the browser, the clinic's API client key (a JWK file, kept
as a non-extractable WebCrypto key in the browser's own storage and never sent) signs a
client assertion for an access token, and the page uses the same API as any clinic system:
the server applies exactly the API's checks. Bundles are signed in the browser with the
clinic-held signing key (detached JWS over RFC 8785, as ``registry sign``), or sent unsigned
for a clinic whose key the registry holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
from flask import Response, jsonify, render_template, request
from flask_babel import Domain

from registry.certificates.labels import COUNTRIES
from registry.clinic_portal.catalogue import form_catalogue
from registry.clinic_portal.wording import messages
from registry.db import utcnow
from registry.pages import LANGUAGES, choose_language, page_headers
from registry.pages import init_app as init_pages
from registry.web import context, page_operation, path_parameter, query_parameter

HERE = Path(__file__).parent
# the portal's own catalogue (domain "portal"), so its words travel with the package
domain = Domain(translation_directories=[str(HERE / "translations")], domain="portal")

blp = flask.Blueprint(
    "clinic_portal",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/clinic/static",
)


@blp.record_once
def _setup(state: Any) -> None:
    init_pages(state.app)


@blp.after_request
def _headers(response: Response) -> Response:
    # the camera takes the migrant's photo; nothing else of the device is used
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    return page_headers(response)


def _page(template: str, section: str, **values: Any) -> str:
    language = choose_language(request.args.get("lang"))
    return render_template(
        f"clinic_portal/{template}",
        _=domain.gettext,
        lang=language,
        languages=LANGUAGES,
        section=section,
        messages=messages(domain.gettext),
        token_url=context().settings.token_url,
        **values,
    )


@blp.route("/clinic")
def home() -> str:
    """Sign in; then the clinic's quota, its examinations and their search."""
    return _page("home.html", "home")


@blp.route("/clinic/examinations/new")
def new_examination() -> str:
    """The duplicate lookup, then the examination form (also for amending: ``?amend=<id>``)."""
    return _page("form.html", "new")


@blp.route("/clinic/examinations/<examination_id>")
def examination(examination_id: str) -> str:
    """One examination: the receipt's verdicts, certificates, amend and withdraw."""
    return _page("examination.html", "list", examination_id=examination_id)


@blp.route("/clinic/referrals")
def referrals() -> str:
    """Referrals to this clinic as a programme facility, and their follow-up."""
    return _page("referrals.html", "referrals")


@blp.route("/clinic/keys")
def keys() -> str:
    """Make the clinic's key pair in this browser; only the public key is shown to send."""
    return _page("keys.html", "keys")


@blp.route("/clinic/catalogue.json")
def catalogue() -> Response:
    """The rulesets in force and the ValueSets' codes, labelled in the requested language."""
    language = choose_language(request.args.get("lang"))
    with context().db.reading() as uow:
        body = form_catalogue(
            uow.session, utcnow().date(), COUNTRIES.get(language, COUNTRIES["en"]), domain.gettext
        )
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-cache"
    return response


_ID = [path_parameter("examination_id", "The registry's examination id")]
_CATALOGUE = page_operation(
    "Rulesets in force and the codes the examination form offers",
    content="application/json",
    parameters=[query_parameter("lang", "The labels' language", enum=list(LANGUAGES))],
)
_CATALOGUE["responses"]["200"]["content"]["application/json"]["schema"] = {
    "type": "object",
    "required": ["tests", "rulesets", "purposes", "countries"],
}
OPENAPI_PATHS = {
    "/clinic": {"get": page_operation("The clinic portal: sign in, quota, examinations")},
    "/clinic/examinations/new": {
        "get": page_operation("The clinic portal's examination form (signs in the browser)")
    },
    "/clinic/examinations/{examination_id}": {
        "get": page_operation(
            "The clinic portal's page of one examination (read with the clinic's token)",
            parameters=_ID,
        )
    },
    "/clinic/referrals": {"get": page_operation("The clinic portal's referral follow-up")},
    "/clinic/keys": {"get": page_operation("Make a clinic key pair in the browser")},
    "/clinic/catalogue.json": {"get": _CATALOGUE},
}

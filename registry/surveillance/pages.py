"""The ministry dashboard ``/surveillance``: charts drawn from the same protected extracts.

The page holds no counts. In the browser, the ministry's API client key (a JWK file that never
leaves the browser) signs a client assertion, the page gets an access token from
``/oauth/token`` and reads ``/api/v1/surveillance/extract`` like any other client, so the
dashboard shows exactly what the signed extracts publish.
"""

from __future__ import annotations

import flask
from flask import render_template
from flask_babel import lazy_gettext as _l

from registry.db import utcnow
from registry.extensions import public_reads
from registry.pages import LANGUAGES, choose_language, page_headers
from registry.surveillance.cube import MEASURES
from registry.surveillance.service import closed_through
from registry.web import context, page_operation

blp = flask.Blueprint("surveillance_pages", __name__)
blp.after_request(page_headers)
public_reads(blp)

MEASURE_LABELS = {
    "examined": _l("Examined"),
    "cxr-suggestive-tb": _l("Chest X-ray suggestive of TB"),
    "tb-bact-confirmed": _l("TB, bacteriologically confirmed"),
    "tb-rif-resistant": _l("TB, rifampicin-resistant"),
    "hiv-reactive-screening": _l("HIV reactive on screening"),
    "hiv-confirmed": _l("HIV confirmed"),
    "syphilis-reactive": _l("Syphilis reactive"),
    "referrals-made": _l("Referrals made"),
    "referrals-completed": _l("Referrals completed"),
}
assert set(MEASURE_LABELS) == set(MEASURES)

# Words the page's script shows; {name} is filled in by the script.
SCRIPT_MESSAGES = {
    "pending": _l(
        "The registry is protecting the newest counts of this year; the charts appear when it "
        "is done (next try in {seconds} s)."
    ),
    "no_token": _l("no access token"),
    "key_not_private": _l("the file is not a private P-256 key (JWK with kty EC, crv P-256 and d)"),
    "key_no_client": _l("the key file does not name its client (client_id)"),
    "nothing": _l("Nothing to show: no category was counted."),
    "all_withheld": _l("All {count} counts withheld: too few people to publish."),
    "all_zero": _l(
        "Every count is zero: nobody in this view was examined or had the finding in these "
        "quarters."
    ),
    "some_withheld": _l(
        "{hidden} of {total} counts withheld (hatched, labelled \u201cwithheld\u201d; not zero)."
    ),
    "zeros": _l("{count} published as zero."),
    "withheld": _l("withheld"),
    "withheld_count": _l("{count} withheld counts in these charts"),
    "no_quarter": _l("No quarter of {year} is closed yet."),
    "loading": _l("Loading the protected counts\u2026"),
    "load_failed": _l("Could not load the counts: {error}"),
    "by_destination": _l("By destination: {measure}"),
    "by_origin": _l("By country of origin: {measure}"),
    "method": _l(
        "Method {name} {version}, k = {k}: a count from 1 to {below} is withheld, and so is every "
        "count it could be worked out from. The hatched stubs in the charts are these withheld "
        "counts."
    ),
    "status_origin": _l("Counts for {year}, quarters 1\u2013{quarters}, our country as origin."),
    "status_destination": _l(
        "Counts for {year}, quarters 1\u2013{quarters}, our country as destination."
    ),
    "nobody_origin": _l(
        "No examination recorded in the registry for these quarters names our country as "
        "origin, so every count is zero (nothing is withheld)."
    ),
    "nobody_destination": _l(
        "No examination recorded in the registry for these quarters names our country as "
        "destination, so every count is zero (nothing is withheld)."
    ),
    "not_signed_in": _l("Not signed in: {error}"),
    "signed_in": _l("Signed in as {client}."),
}
# Category and dimension names the charts' legends and the withheld list show.
CATEGORY_LABELS = {
    "none": _l("no destination"),
    "male": _l("male"),
    "female": _l("female"),
    "other": _l("other"),
    "unknown": _l("unknown"),
    "origin": _l("origin"),
    "destination": _l("destination"),
    "sex": _l("sex"),
    "age_band": _l("age band"),
}


@blp.route("/surveillance")
def dashboard() -> str:
    """Trend by quarter, by corridor, by sex and by age band for the ministry's country."""
    language = choose_language(flask.request.args.get("lang"))
    last = closed_through(utcnow())
    last_quarter_year = last.year if last.index >= 3 else last.year - 1
    years = list(range(last_quarter_year, last_quarter_year - 5, -1))
    return render_template(
        "surveillance/dashboard.html",
        lang=language,
        languages=LANGUAGES,
        years=years,
        last_closed=last.label,
        measures={key: str(label) for key, label in MEASURE_LABELS.items()},
        messages={key: str(text) for key, text in SCRIPT_MESSAGES.items()},
        categories={key: str(text) for key, text in CATEGORY_LABELS.items()},
        token_url=context().settings.token_url,
    )


OPENAPI_PATHS = {
    "/surveillance": {
        "get": page_operation(
            "The ministries' dashboard page (it fetches extracts with the ministry's token)"
        )
    }
}

"""The ministry dashboard ``/surveillance``: charts drawn from the same protected extracts.

The page holds no counts. In the browser, the ministry's API client key (a JWK file that never
leaves the browser) signs a client assertion, the page gets an access token from
``/oauth/token`` and reads ``/api/v1/surveillance/extract`` like any other client, so the
dashboard shows exactly what the signed extracts publish.
"""

from __future__ import annotations

import flask
from flask import render_template

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
    "examined": "Examined",
    "cxr-suggestive-tb": "Chest X-ray suggestive of TB",
    "tb-bact-confirmed": "TB, bacteriologically confirmed",
    "tb-rif-resistant": "TB, rifampicin-resistant",
    "hiv-reactive-screening": "HIV reactive on screening",
    "hiv-confirmed": "HIV confirmed",
    "syphilis-reactive": "Syphilis reactive",
    "referrals-made": "Referrals made",
    "referrals-completed": "Referrals completed",
}
assert set(MEASURE_LABELS) == set(MEASURES)


@blp.route("/surveillance")
def dashboard() -> str:
    """Trend by quarter, by corridor, by sex and by age band for the ministry's country."""
    # English only for now: the ministries' statisticians work in it; the page's words are not
    # in the verification pages' catalogues, so no other language is offered rather than half
    choose_language("en")
    language = "en"
    last = closed_through(utcnow())
    last_quarter_year = last.year if last.index >= 3 else last.year - 1
    years = list(range(last_quarter_year, last_quarter_year - 5, -1))
    return render_template(
        "surveillance/dashboard.html",
        lang=language,
        languages={"en": LANGUAGES["en"]},
        years=years,
        last_closed=last.label,
        measures=MEASURE_LABELS,
        token_url=context().settings.token_url,
    )


OPENAPI_PATHS = {
    "/surveillance": {
        "get": page_operation(
            "The ministries' dashboard page (it fetches extracts with the ministry's token)"
        )
    }
}

"""The ministry dashboard in headless Chromium: sign in with the client key, charts drawn from
the protected extracts, withheld counts listed, no script error or policy breach.

Chromium and the live registry are the run's (tests/conftest.py); screenshots go to
``$REGISTRY_SCREENSHOTS`` (default ``/tmp/registry-screenshots``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.crypto.keys import generate_key, private_jwk, thumbprint
from registry.surveillance import service
from registry.surveillance.disclosure import ProtectedCube
from registry.surveillance.synthetic import population
from tests.browser import WCAG21_AA, axe_violations, shot, watch_problems
from tests.support import OPERATOR, World
from tests.surveillance.patterns import remember_patterns
from tests.verification.test_pages_browser import app  # noqa: F401 (the live registry)

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def desk(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, base_url=live_server, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(60000)
    watch_problems(page)
    yield page
    context.close()


@pytest.fixture
def ministry_key(world: World, tmp_path: Path) -> Path:
    """A TJ ministry client registered with the registry, and its key file as handed over."""
    from registry.auth import service as auth

    secret = private_jwk(generate_key())
    secret["kid"] = thumbprint(secret)
    with world.ctx.db.unit_of_work() as uow:
        auth.add_client(
            uow,
            actor=OPERATOR,
            name="Ministry of Health, Tajikistan",
            role="ministry",
            country="TJ",
            client_id="ministry-tj",
            jwk={k: v for k, v in secret.items() if k != "d"},
        )
        uow.commit()
    path = tmp_path / "ministry-tj.jwk.json"
    path.write_text(json.dumps({**secret, "client_id": "ministry-tj"}))
    return path


# every test's world holds the same counts: its pattern is computed once (patterns.py)
_PATTERNS: dict[bytes, ProtectedCube] = {}


def opened_on(now: datetime) -> tuple[int, int]:
    """The year the dashboard opens on at `now` and how many of its quarters are closed.

    The live registry and the browser keep the real clock, so the counts are put in the year
    the page shows that day: the newest with a closed quarter (the year before in January to
    March, whose four quarters are all closed)."""
    last = service.closed_through(now)
    return (last.year, last.index // 3) if last.index >= 3 else (last.year - 1, 4)


YEAR, QUARTERS = opened_on(datetime.now(UTC))


@pytest.fixture
def world(app: Any, monkeypatch: pytest.MonkeyPatch) -> World:  # noqa: F811
    """Synthetic counts for every closed quarter of the year the page opens on (YEAR), from
    TJ and KG to KZ and RU.

    6,000 a month still leaves small groups to withhold; 1,500 a month took the suppression
    program twice as long."""
    remember_patterns(monkeypatch, _PATTERNS)
    world = World(app)
    cells = population(
        4,
        year=YEAR,
        months=3 * QUARTERS,
        per_month=6000,
        origins=("TJ", "KG"),
        destinations=("KZ", "RU", "none"),
    )
    with world.ctx.db.unit_of_work() as uow:
        service.add_microcells(uow.session, cells)
        uow.commit()
    service.PROTECTED.clear()
    return world


def protect(world: World) -> None:
    """What the surveillance worker does in the background: compute with no write lock held
    (the page's requests keep writing meanwhile), then store the pattern."""
    assert service.protect_year(world.ctx.db, year=YEAR, k=5, now=datetime.now(UTC)).patterns


def test_a_ministry_signs_in_with_its_key_and_sees_protected_charts(
    world: World, desk: Any, ministry_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "RETRY_AFTER_SECONDS", 1)
    desk.goto("/surveillance?lang=en")
    shot(desk, "surveillance-signin")
    desk.set_input_files("#key-file", str(ministry_key))
    # the year's pattern is not computed yet: the page says so and asks again
    desk.locator("#status", has_text="protecting the newest counts").wait_for()
    shot(desk, "surveillance-pending")
    assert desk.locator("#charts").is_hidden()
    protect(world)
    desk.locator("#charts").wait_for(state="visible")
    assert "Signed in as ministry-tj" in desk.locator("#signin-status").inner_text()
    assert f"{YEAR}, quarters 1–{QUARTERS}" in desk.locator("#status").inner_text()

    examined = desk.evaluate("Chart.getChart('chart-examined').data.datasets[0].data")
    headers = {"Authorization": f"Bearer {world.token(world.api_client('ministry', country='TJ'))}"}
    totals = world.http.get(
        "/api/v1/surveillance/extract",
        query_string={"granularity": "quarter", "from": f"{YEAR}-Q1", "to": f"{YEAR}-Q{QUARTERS}"},
        headers=headers,
    ).json
    published = [
        c["value"] for c in totals["cells"] if c["measure"] == "examined" and c["origin"] == "TJ"
    ]
    assert examined == published  # the chart draws exactly the published counts
    assert all(value and value > 100 for value in examined)

    corridor = desk.evaluate("Chart.getChart('chart-corridor').data.datasets.map(d => d.label)")
    assert corridor == ["KZ", "RU", "no destination"]
    ages = desk.evaluate("Chart.getChart('chart-age').data.datasets.map(d => d.label)")
    assert ages == ["<18", "18-29", "30-59", "60+"]
    sexes = desk.evaluate("Chart.getChart('chart-sex').data.datasets.map(d => d.label)")
    assert sexes == ["male", "female", "other", "unknown"]
    withheld = desk.locator("#withheld-list li")
    assert withheld.count() > 0  # small groups of a 6,000-a-month population are withheld
    summary = desk.locator("#withheld-count").inner_text()
    assert summary == f"{withheld.count()} withheld counts in these charts"
    assert "k = 5" in desk.locator("#method").inner_text()
    shot(desk, "surveillance-dashboard")

    desk.select_option("#measure", "hiv-reactive-screening")
    desk.locator("#corridor-title", has_text="HIV reactive").wait_for()
    note = desk.locator("#chart-sex-note").inner_text()
    hidden = desk.evaluate(
        "Chart.getChart('chart-sex').data.datasets.flatMap(d => d.data)"
        ".filter(v => v === null).length"
    )
    counts = 4 * QUARTERS  # four sexes by quarter
    assert (f"{hidden} of {counts} counts withheld" in note) or (
        note.startswith(f"All {counts}") and hidden == counts
    )
    if hidden:
        assert "hatched" in note and "not zero" in note
    shot(desk, "surveillance-hiv")

    # every chart has an accessible name (its caption) and a description (its note)
    names = desk.evaluate(
        "[...document.querySelectorAll('canvas[role=img]')].map(c => [c.id, "
        "document.getElementById(c.getAttribute('aria-labelledby')).textContent.trim(), "
        "document.getElementById(c.getAttribute('aria-describedby')) !== null])"
    )
    assert [n[0] for n in names] == [
        "chart-examined",
        "chart-findings",
        "chart-corridor",
        "chart-sex",
        "chart-age",
    ]
    assert all(name and described for _id, name, described in names), names
    assert names[2][1] == "By destination: HIV reactive on screening"

    # nobody names Tajikistan as destination: the page says why the view is all zeros
    desk.select_option("#scope", "destination")
    status = desk.locator("#status", has_text="our country as destination")
    status.wait_for()
    assert "No examination recorded in the registry for these quarters" in status.inner_text()
    assert "Every count is zero" in desk.locator("#chart-examined-note").inner_text()
    shot(desk, "surveillance-destination")
    assert desk.problems == []


def test_a_key_file_that_is_not_a_client_key_is_refused_clearly(
    world: World, desk: Any, tmp_path: Path
) -> None:
    wrong = tmp_path / "public.json"
    wrong.write_text(json.dumps({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))
    desk.goto("/surveillance?lang=en")
    desk.set_input_files("#key-file", str(wrong))
    status = desk.locator("#signin-status", has_text="Not signed in")
    status.wait_for()
    assert "not a private P-256 key" in status.inner_text()
    assert desk.locator("#charts").is_hidden()
    assert desk.problems == []


CATALOGUES = Path(__file__).resolve().parents[2] / "registry" / "translations"


def test_the_dashboard_speaks_the_six_languages_of_the_verification_pages(
    world: World,
    browser: Any,
    live_server: str,
    ministry_key: Path,
) -> None:
    from babel.support import Translations

    from registry.pages import LANGUAGES

    protect(world)
    headings = set()
    for lang in LANGUAGES:
        words = Translations.load(str(CATALOGUES), [lang])
        # the test's own browser speaks English: the page follows ?lang=, not the browser
        context = browser.new_context(viewport=DESKTOP, base_url=live_server, locale="en-GB")
        page = context.new_page()
        page.set_default_timeout(60000)
        watch_problems(page)
        page.goto(f"/surveillance?lang={lang}")
        assert page.locator("html").get_attribute("lang") == lang
        heading = page.locator("h1").inner_text()
        assert heading == words.gettext("TB and HIV surveillance")
        headings.add(heading)
        current = page.locator(".languages__item--current")
        assert current.inner_text() == LANGUAGES[lang]
        page.set_input_files("#key-file", str(ministry_key))
        page.locator("#charts").wait_for(state="visible")
        status = words.gettext(
            "Counts for {year}, quarters 1\u2013{quarters}, our country as origin."
        ).format(year=YEAR, quarters=QUARTERS)
        assert page.locator("#status").inner_text() == status
        assert page.locator("#signin-status").inner_text() == words.gettext(
            "Signed in as {client}."
        ).format(client="ministry-tj")
        corridor = page.evaluate("Chart.getChart('chart-corridor').data.datasets.map(d => d.label)")
        assert corridor == ["KZ", "RU", words.gettext("no destination")]
        sexes = page.evaluate("Chart.getChart('chart-sex').data.datasets.map(d => d.label)")
        assert sexes == [words.gettext(s) for s in ("male", "female", "other", "unknown")]
        withheld = page.locator("#withheld-list li").count()
        assert page.locator("#withheld-count").inner_text() == words.gettext(
            "{count} withheld counts in these charts"
        ).format(count=withheld)
        # every series' name fits in the legend of the findings chart (long names wrap)
        legend = page.evaluate(
            "(() => { const l = Chart.getChart('chart-findings').legend; return "
            "[l.legendItems.length, l.legendHitBoxes.filter(b => b.top + b.height <= l.bottom "
            "&& b.left + b.width <= l.right).length]; })()"
        )
        assert legend == [8, 8], (lang, legend)
        options = page.locator("#measure option").all_inner_texts()
        assert options[5] == words.gettext("HIV confirmed")
        shot(page, f"surveillance-{lang}")

        assert axe_violations(page, tags=WCAG21_AA) == [], lang
        assert page.problems == []
        context.close()
    assert len(headings) == len(LANGUAGES)  # every language has its own words

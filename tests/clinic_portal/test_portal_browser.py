"""The clinic portal in headless Chromium: sign in with key files, enter full pre-departure
examinations in Tajik (signed in the browser) and Russian (custodial key), get the
certificates and their PDF, amend, withdraw; drafts survive a reload and go at sign-out; a
signature made by the page verifies with the server's code; axe-core finds no violation.

Chromium and the live registry are the run's (tests/conftest.py); screenshots go to
``$REGISTRY_SCREENSHOTS`` (default ``/tmp/registry-screenshots``).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from registry.accreditation import service as accreditation
from registry.certificates.models import Certificate
from registry.crypto.canonical import canonical_json
from registry.crypto.keys import load_public_jwk, private_jwk
from registry.examinations.models import Examination
from registry.examinations.signing import detached_jws, signed_content, verify_bundle
from tests.browser import axe_violations, shot, watch_problems
from tests.bundles import examination_bundle
from tests.certificates.builders import load_rulesets
from tests.support import OPERATOR, World

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
GOOD = {"chest-xray": "normal", "laboratory": "260385009", "exam": "absent"}


@pytest.fixture
def app(live_app: Flask) -> Flask:
    """The live registry with the shipped rulesets."""
    load_rulesets(live_app)
    return live_app


def _context(browser: Any, live_server: str, viewport: dict[str, int], **extra: Any) -> Any:
    phone = viewport["width"] < 600
    return browser.new_context(
        viewport=viewport,
        is_mobile=phone,
        has_touch=phone,
        base_url=live_server,
        locale="ru-RU",
        **extra,
    )


def _watch(page: Any) -> list[str]:
    page.on("dialog", lambda dialog: dialog.accept())
    page.set_default_timeout(20000)
    return watch_problems(page)


def _shot(page: Any, name: str) -> None:
    shot(page, f"portal-{name}")


class Clinic:
    """A clinic with its client key file and, when it keeps its own key, its signing key file."""

    def __init__(self, world: World, tmp: Path, clinic_id: str, custody: str) -> None:
        world.clinic(clinic_id, custody="custodial" if custody == "custodial" else "clinic-held")
        self.id = clinic_id
        self.signing_file: Path | None = None
        self.signing_public: dict[str, str] | None = None
        if custody == "clinic-held":
            with world.ctx.db.unit_of_work() as uow:
                key, secret = accreditation.generate_clinic_key(
                    uow, principal=OPERATOR, clinic_id=clinic_id, custody="clinic-held"
                )
                uow.commit()
            assert secret is not None
            self.signing_file = tmp / f"{clinic_id}-signing.jwk.json"
            self.signing_file.write_text(json.dumps(secret))
            self.signing_public = key.public_jwk
        client = world.api_client("clinic", clinic_id=clinic_id)
        self.client_file = tmp / f"{clinic_id}-client.jwk.json"
        self.client_file.write_text(
            json.dumps({**private_jwk(client.key), "kid": client.kid, "client_id": client.id})
        )


def _portrait(path: Path) -> Path:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (300, 400), (214, 196, 170))
    ImageDraw.Draw(picture).ellipse((80, 60, 220, 230), fill=(160, 120, 90))
    picture.save(path)
    return path


def _sign_in(page: Any, clinic: Clinic, lang: str) -> None:
    page.goto(f"/clinic?lang={lang}")
    page.set_input_files("#client-key", str(clinic.client_file))
    if clinic.signing_file:
        page.set_input_files("#signing-key", str(clinic.signing_file))
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#account-name:has-text('" + clinic.id + "')")


def _choose_results(page: Any) -> list[str]:
    rows = page.locator("#tests .test")
    concepts = []
    for index in range(rows.count()):
        row = rows.nth(index)
        concept = row.locator(".test-concept").input_value()
        category = "chest-xray" if concept == "chest-xray" else None
        if category is None:
            category = (
                "exam"
                if concept in ("leprosy-clinical", "drug-screening", "psychiatric-exam")
                else "laboratory"
            )
        row.locator(".test-result").select_option(GOOD[category])
        concepts.append(concept)
    return concepts


def _fill_examination(page: Any, *, number: str, tmp: Path, examined: str, birth: str) -> None:
    page.fill("#number", number)
    page.fill("#exam-date", examined)
    page.select_option("#purpose", "pre-departure")
    page.check("input[name=destination][value=KZ]")
    page.check("input[name=also][value=RU]")
    page.fill("#physician-family", "Nazarova")
    page.fill("#physician-given", "Dilnoza")
    page.fill("#licence", "TJ-MD-20417")
    page.fill("#family-latin", "Rahimova")
    page.fill("#given-latin", "Zarina")
    page.fill("#patronymic-latin", "Karimovna")
    page.fill("#family-cyrillic", "Рахимова")
    page.fill("#given-cyrillic", "Зарина")
    page.fill("#patronymic-cyrillic", "Каримовна")
    page.select_option("#sex", "female")
    page.fill("#birth-date", birth)
    page.select_option("#citizenship", "TJ")
    first = page.locator("#documents .document").first
    first.locator(".doc-type").select_option("passport")
    first.locator(".doc-number").fill("409876543")
    first.locator(".doc-expiry").fill("2031-08-20")
    page.set_input_files("#photo-file", str(_portrait(tmp / "portrait.png")))
    page.wait_for_selector("#photo-preview:not([hidden])")
    page.select_option("#extra-test", "hbsag")
    page.click("#add-test")
    for date_input in page.locator("#tests .test-date").all():
        date_input.fill(examined)
    page.check("#consent")
    page.check("#share-history")


def _today() -> datetime:
    return datetime.now(UTC)


def _enter_and_submit(page: Any, tmp: Path, number: str) -> list[str]:
    examined = (_today().date() - timedelta(days=2)).isoformat()
    _fill_examination(page, number=number, tmp=tmp, examined=examined, birth="1994-05-02")
    concepts = _choose_results(page)
    page.click("#submit")
    page.wait_for_url("**/clinic/examinations/EX*")
    page.wait_for_selector("#verdicts li")
    return concepts


def _certificates(world: World, number: str) -> list[tuple[str, str, str]]:
    with world.ctx.db.read_session() as session:
        examination = session.scalars(
            select(Examination).where(Examination.identifier_value == number)
        ).one()
        return [
            (c.destination, c.status, c.id)
            for c in session.scalars(
                select(Certificate)
                .where(Certificate.examination_id == examination.id)
                .order_by(Certificate.destination, Certificate.issued_at)
            )
        ]


def _run_examination(
    browser: Any, live_server: str, world: World, tmp: Path, clinic: Clinic, lang: str
) -> None:
    context = _context(browser, live_server, PHONE if lang == "tg" else DESKTOP)
    page = context.new_page()
    problems = _watch(page)
    size = "360" if lang == "tg" else "desktop"
    _sign_in(page, clinic, lang)
    page.click("a[href*='/clinic/examinations/new']")
    page.wait_for_selector("input[name=destination][value=KZ]")
    # the duplicate lookup: nobody holds a certificate yet
    page.fill("#lookup-number", "409876543")
    page.fill("#lookup-birth", "1994-05-02")
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#lookup-result:not(:empty)")
    assert "is-problem" not in (page.get_attribute("#lookup-result", "class") or "")
    number = f"{lang.upper()}-2026-0001"
    concepts = _enter_and_submit(page, tmp, number)
    # KZ asks for the X-ray and an HIV test, RU adds syphilis, leprosy and narcology
    assert concepts[:5] == [
        "chest-xray",
        "hiv-screening",
        "syphilis-nontreponemal",
        "leprosy-clinical",
        "drug-screening",
    ]
    assert concepts[5] == "hbsag"
    _shot(page, f"receipt-{lang}-{size}")
    verdicts = page.locator("#verdicts > li")
    met = {v.split(":")[0] for v in verdicts.all_inner_texts()}
    assert met == {"KZ", "RU", "TM"}
    assert page.locator("#verdicts .verdict--met").count() == 3
    issued = _certificates(world, number)
    assert [(d, s) for d, s, _ in issued] == [("KZ", "valid"), ("RU", "valid"), ("TM", "valid")]
    assert page.locator("#certificates .cert-item--valid").count() == 3
    # the printable certificate: the PDF the page opens for printing
    printed: list[tuple[int, str, bytes]] = []

    def keep(route: Any) -> None:
        answer = route.fetch()
        printed.append((answer.status, answer.headers["content-type"], answer.body()))
        route.fulfill(response=answer)

    page.route("**/certificate.pdf*", keep)
    with page.expect_popup() as popup:
        page.locator("#certificates .cert-item--valid button").first.click()
    popup.value.close()
    assert [(status, kind) for status, kind, _ in printed] == [(200, "application/pdf")]
    assert printed[0][2][:5] == b"%PDF-"
    # amend: the form comes back filled from the stored bundle; a corrected licence number
    page.click("#amend")
    page.wait_for_selector("#tests .test")
    assert page.input_value("#family-cyrillic") == "Рахимова"
    assert page.input_value("#number") == number
    page.fill("#licence", "TJ-MD-20418")
    page.click("#submit")
    page.wait_for_url("**/clinic/examinations/EX*")
    page.wait_for_selector("#verdicts li")
    after = _certificates(world, number)
    assert sorted(s for _, s, _ in after) == ["superseded"] * 3 + ["valid"] * 3
    # withdraw with a reason: every certificate is revoked
    page.fill("#withdraw-reason", "entered for the wrong person")
    page.click("#withdraw button[type=submit]")
    page.wait_for_selector("#actions[hidden]", state="attached")
    final = _certificates(world, number)
    assert {s for _, s, _ in final} <= {"superseded", "revoked"}
    assert sum(1 for _, s, _ in final if s == "revoked") == 3
    _shot(page, f"withdrawn-{lang}-{size}")
    assert problems == []
    context.close()


def test_a_clinic_held_key_clinic_enters_an_examination_in_tajik_on_a_phone(
    browser: Any, live_server: str, world: World, tmp_path: Path
) -> None:
    clinic = Clinic(world, tmp_path, "TJ-DUS-0007", "clinic-held")
    _run_examination(browser, live_server, world, tmp_path, clinic, "tg")
    with world.ctx.db.read_session() as session:
        versions = session.scalars(select(Examination)).one().versions
    assert [(v.version, v.custodial, v.signing_kid) for v in versions] == [
        (1, False, clinic.signing_public["kid"]),
        (2, False, clinic.signing_public["kid"]),
    ]


def test_a_custodial_clinic_enters_an_examination_in_russian_on_a_desktop(
    browser: Any, live_server: str, world: World, tmp_path: Path
) -> None:
    clinic = Clinic(world, tmp_path, "KG-BIS-0001", "custodial")
    _run_examination(browser, live_server, world, tmp_path, clinic, "ru")
    with world.ctx.db.read_session() as session:
        versions = session.scalars(select(Examination)).one().versions
    assert [v.custodial for v in versions] == [True, True]


def test_a_draft_survives_a_reload_and_is_cleared_at_sign_out(
    browser: Any, live_server: str, world: World, tmp_path: Path
) -> None:
    clinic = Clinic(world, tmp_path, "KG-BIS-0001", "custodial")
    context = _context(browser, live_server, PHONE)
    page = context.new_page()
    problems = _watch(page)
    _sign_in(page, clinic, "ru")
    page.goto("/clinic/examinations/new?lang=ru")
    page.wait_for_selector("input[name=destination][value=KZ]")
    page.fill("#number", "DRAFT-1")
    page.fill("#family-cyrillic", "Рахимова")
    page.check("input[name=destination][value=KZ]")
    page.locator("#tests .test-result").first.select_option("normal")
    # a date in the future is refused as it is typed
    future = (_today().date() + timedelta(days=3)).isoformat()
    page.fill("#exam-date", future)
    assert page.inner_text("#exam-date-error") == "Дата в будущем."
    page.reload()
    page.wait_for_selector("#tests .test")
    assert page.input_value("#number") == "DRAFT-1"
    assert page.input_value("#family-cyrillic") == "Рахимова"
    assert page.locator("#tests .test-result").first.input_value() == "normal"
    _shot(page, "form-ru-360")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("() => localStorage.length") == 0
    page.goto("/clinic/examinations/new?lang=ru")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.is_hidden("#content")
    assert problems == []
    context.close()


def test_a_signature_made_in_the_browser_verifies_with_the_server_code(
    browser: Any, live_server: str, world: World, tmp_path: Path
) -> None:
    clinic = Clinic(world, tmp_path, "TJ-DUS-0007", "clinic-held")
    assert clinic.signing_file is not None
    secret = json.loads(clinic.signing_file.read_text())
    context = _context(browser, live_server, DESKTOP)
    page = context.new_page()
    page.goto("/clinic/keys?lang=en")
    bundle = examination_bundle(clinic_id="TJ-DUS-0007", number="JCS-1")
    # what JCS is particular about: key order by UTF-16 units, numbers, escapes, non-ASCII
    bundle["extension"] = [{"url": "urn:x", "valueDecimal": 0.1, "b": 1e21, "\u00e9": '\u2028é"\\'}]
    bundle["meta"] = {
        "tag": [{"code": "😀", "display": "\U0001f600 ключ"}],
        "z": -0.0,
        "a": 12345678.5,
    }
    signed = page.evaluate(
        """async ([bundle, jwk]) => {
          const key = await crypto.subtle.importKey("jwk", {kty: "EC", crv: "P-256", x: jwk.x,
            y: jwk.y, d: jwk.d}, {name: "ECDSA", namedCurve: "P-256"}, false, ["sign"]);
          return {signed: await Portal.signBundle(bundle, key, jwk.kid),
                  canonical: Portal.canonical(bundle)};
        }""",
        [bundle, secret],
    )
    assert signed["canonical"].encode() == canonical_json(bundle)
    made = signed["signed"]
    token = detached_jws(made["signature"]["data"])
    verify_bundle(signed_content(made), token, load_public_jwk(clinic.signing_public))
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) == {
        "alg": "ES256",
        "kid": secret["kid"],
    }
    assert made["signature"]["who"]["reference"] == bundle["entry"][2]["fullUrl"]
    changed = {**made, "type": "collection"}
    with pytest.raises(ValueError):
        verify_bundle(signed_content(changed), token, load_public_jwk(clinic.signing_public))
    context.close()


def test_the_keys_page_makes_a_key_pair_and_shows_only_the_public_key(
    browser: Any, live_server: str
) -> None:
    context = _context(browser, live_server, PHONE, accept_downloads=True)
    page = context.new_page()
    problems = _watch(page)
    page.goto("/clinic/keys?lang=kk")
    page.fill("#keys-client-id", "clinic-tj-kul-0009-abc")
    page.click("#make-key")
    page.wait_for_selector("#made:not([hidden])")
    public = json.loads(page.input_value("#public-key"))
    assert set(public) == {"kty", "crv", "x", "y", "kid"}
    with page.expect_download() as saving:
        page.click("#key-download")
    secret = json.loads(Path(saving.value.path()).read_text())
    assert secret["d"] and secret["client_id"] == "clinic-tj-kul-0009-abc"
    assert {k: secret[k] for k in public} == public
    from registry.crypto.keys import load_private_jwk, thumbprint

    assert thumbprint(public) == public["kid"]
    load_private_jwk(secret)
    _shot(page, "keys-kk-360")
    assert problems == []
    context.close()


PAGES = ("/clinic", "/clinic/examinations/new", "/clinic/referrals", "/clinic/keys")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_axe_finds_no_violation_on_the_portal_pages(
    browser: Any, live_server: str, world: World, tmp_path: Path, viewport: dict[str, int]
) -> None:
    clinic = Clinic(world, tmp_path, "KG-BIS-0001", "custodial")
    context = _context(browser, live_server, viewport)
    page = context.new_page()
    _watch(page)
    findings: dict[str, list[str]] = {}
    page.goto("/clinic?lang=ky")
    page.wait_for_selector("#signin:not([hidden])")
    findings["/clinic signed out"] = axe_violations(page)
    _sign_in(page, clinic, "ky")
    page.wait_for_selector("#list-status:not(:empty)")
    for path in PAGES:
        page.goto(f"{path}?lang=uz")
        page.wait_for_selector("#content:not([hidden])")
        if path.endswith("/new"):
            page.check("input[name=destination][value=RU]")
            page.check("#is-dependant")
            page.click("#add-referral")
        findings[path] = axe_violations(page)
        name = path.strip("/").replace("/", "-")
        _shot(page, f"{name}-uz-{'360' if viewport is PHONE else 'desktop'}")
    assert findings == {key: [] for key in findings}
    context.close()

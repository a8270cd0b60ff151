"""The employer and holder pages in headless Chromium: typed, uploaded and scanned QR codes,
every verdict, a 360-pixel phone screen, six languages, and no Content-Security-Policy breach.

Chromium and the live registry are the run's (tests/conftest.py). Screenshots go to
``$REGISTRY_SCREENSHOTS`` (default ``/tmp/registry-screenshots``) for review. The database half
of these pages is covered on both backends by the API tests; the browser tests run on SQLite only.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from registry.certificates import shc
from registry.certificates.holders import holder_secret
from tests.browser import SCREENSHOTS, camera_feed, shot, watch_problems
from tests.bundles import examination_bundle
from tests.support import World
from tests.verification.helpers import (
    BIRTH_DATE,
    card_of,
    certificate,
    publish,
    scenarios,
    verify,
    with_portrait,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
TITLES = {
    "valid": "Meets the requirements of Kazakhstan",
    "valid_for_other_destination": "Not valid for Russia",
    "expired": "Certificate expired",
    "not_yet_valid": "Not yet valid",
    "revoked": "Certificate revoked",
    "superseded": "Certificate replaced",
    "invalid_signature": "Forged or altered",
    "untrusted_issuer": "Unknown issuer",
    "issuer_suspended": "Issuer suspended",
    "not_found": "No valid certificate found",
    "malformed": "Could not read the code",
}
TONES = {
    "valid": "good",
    "expired": "warn",
    "not_yet_valid": "warn",
    "malformed": "neutral",
}
CHECK_TITLES = {
    "en": "Check a medical examination certificate",
    "ru": "Проверка сертификата о медицинском освидетельствовании",
}


@pytest.fixture
def app(live_app: Flask) -> Flask:
    """The live registry: what the test's world writes, its pages show."""
    return live_app


def _qr_picture(text: str, path: Path, *, photo: bool) -> Path:
    """The QR as a PNG; as a photo: on a grey desk, slightly turned, with a margin of paper."""
    from PIL import Image, ImageFilter

    from registry.certificates.qr import qr_png

    code = Image.open(io.BytesIO(qr_png(text, scale=5))).convert("RGB")
    if photo:
        paper = Image.new("RGB", (code.width + 80, code.height + 80), (250, 250, 246))
        paper.paste(code, (40, 40))
        turned = paper.rotate(7, expand=True, fillcolor=(120, 124, 128), resample=Image.BICUBIC)
        desk = Image.new("RGB", (turned.width + 200, turned.height + 160), (120, 124, 128))
        desk.paste(turned, (110, 70))
        code = desk.filter(ImageFilter.GaussianBlur(0.6))
    code.save(path)
    return path


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        base_url=live_server,
        locale="en-GB",
    )
    context.grant_permissions(["camera"], origin=live_server)
    page = context.new_page()
    page.set_default_timeout(15000)
    watch_problems(page)
    yield page
    context.close()


def _verdict(page: Any) -> dict[str, str]:
    verdict = page.locator("section.verdict")
    verdict.wait_for()
    return {
        "result": verdict.get_attribute("data-result"),
        "class": verdict.get_attribute("class"),
        "title": page.locator(".verdict__title").inner_text(),
    }


def test_manual_entry_on_a_phone_shows_the_verdict_name_photo_and_document(
    world: World, page: Any
) -> None:
    publish(world)
    issued = certificate(world, bundle=with_portrait(examination_bundle(number="B-MANUAL")))
    page.goto("/verify?lang=en")
    shot(page, "verify-form-en-360")
    page.fill("#certificate_id", issued.id.lower().replace("-", " "))
    page.fill("#birth_date", BIRTH_DATE)
    page.click("#manual button[type=submit]")
    verdict = _verdict(page)
    assert verdict["result"] == "valid" and "verdict--good" in verdict["class"]
    assert verdict["title"] == "Meets the requirements of Kazakhstan"
    assert page.locator(".verdict__purpose").inner_text() == "Purpose: before departure"
    assert page.locator(".person__name").inner_text() == "Karimov Rustam Saidovich"
    assert page.locator(".person__birth").inner_text() == "14.03.1991"
    assert page.locator(".person__document").inner_text() == "•••• 4567"
    assert page.locator(".certificate__id").inner_text() == issued.id
    photo = page.locator("img.person__photo")
    photo.wait_for()
    assert page.evaluate("img => img.naturalWidth", photo.element_handle()) == 150
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "verify-valid-en-360")
    assert page.problems == []


def test_an_uploaded_photo_of_the_qr_code_is_read_and_verified(
    world: World, page: Any, tmp_path: Path
) -> None:
    publish(world)
    issued = certificate(world, number="B-UPLOAD")
    picture = _qr_picture(shc.qr_payload(card_of(world, issued)), tmp_path / "qr.png", photo=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(picture, SCREENSHOTS / "uploaded-qr-photo.png")
    page.goto("/verify?lang=en")
    page.set_input_files("#photo", str(picture))
    verdict = _verdict(page)
    assert verdict["result"] == "valid", page.locator("#scan-status").inner_text()
    assert page.locator(".certificate__id").inner_text() == issued.id
    shot(page, "verify-upload-valid-en-360")
    assert page.problems == []


def test_a_photo_without_a_qr_code_says_so_and_submits_nothing(
    world: World, page: Any, tmp_path: Path
) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 300), (200, 200, 200)).save(blank)
    page.goto("/verify?lang=en")
    page.set_input_files("#photo", str(blank))
    status = page.locator("#scan-status")
    page.wait_for_function(
        "() => document.getElementById('scan-status').textContent.includes('No QR code')"
    )
    assert "No QR code found" in status.inner_text()
    assert page.locator("section.verdict").count() == 0


def test_the_camera_reads_a_qr_code_held_in_front_of_it(
    world: World, page: Any, camera_file: Path
) -> None:
    publish(world)
    issued = certificate(world, number="B-CAMERA")
    camera_feed(shc.qr_payload(card_of(world, issued)), camera_file)
    page.goto("/verify?lang=en")
    page.click("#scan-camera")
    verdict = _verdict(page)
    assert verdict["result"] == "valid"
    assert page.locator(".certificate__id").inner_text() == issued.id


def test_every_verdict_is_rendered_unmistakably(world: World, page: Any) -> None:
    inputs = scenarios(world)
    assert sorted(inputs) == sorted(TITLES)
    for result, fields in inputs.items():
        page.goto("/verify?lang=en")
        page.select_option("#for_destination", fields.get("for_destination", ""))
        if "qr" in fields:
            page.click("details.details summary")
            page.fill("#qr", fields["qr"])
            page.click("#pasted button[type=submit]")
        else:
            page.fill("#certificate_id", fields["certificate_id"])
            page.fill("#birth_date", fields["birth_date"])
            page.click("#manual button[type=submit]")
        verdict = _verdict(page)
        assert verdict["result"] == result
        assert verdict["title"] == TITLES[result]
        assert f"verdict--{TONES.get(result, 'bad')}" in verdict["class"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, f"verdict-{result}-en-360")
    assert page.problems == []


def test_the_language_switch_translates_the_page_and_the_verdict(world: World, page: Any) -> None:
    publish(world)
    issued = certificate(world, number="B-LANG")
    page.goto("/verify")
    assert page.locator("h1").inner_text() == CHECK_TITLES["en"]
    page.click("nav.languages a[lang=ru]")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("h1").inner_text() == CHECK_TITLES["ru"]
    page.fill("#certificate_id", issued.id)
    page.fill("#birth_date", BIRTH_DATE)
    page.click("#manual button[type=submit]")
    assert _verdict(page)["title"] == "Соответствует требованиям: Казахстан"
    assert page.locator(".certificate dd").nth(1).inner_text() == "Казахстан"
    shot(page, "verify-valid-ru-360")
    titles = {}
    for language in ("en", "ru", "kk", "ky", "tg", "uz"):
        page.goto(f"/verify?lang={language}")
        titles[language] = page.locator("h1").inner_text()
        assert page.locator(".languages__item--current").get_attribute("lang") == language
        shot(page, f"verify-form-{language}-360")
    assert len(set(titles.values())) == 6, titles


def test_the_holder_page_lists_certificates_downloads_and_who_checked(
    world: World, page: Any
) -> None:
    publish(world)
    issued = certificate(world, number="B-HOLDER")
    employer = world.bearer("employer")
    verify(world, {"certificate_id": issued.id, "birth_date": BIRTH_DATE}, headers=employer)
    verify(world, {"certificate_id": issued.id, "birth_date": BIRTH_DATE})
    secret = holder_secret(world.ctx.keystore, examination_id=issued.examination_id)
    page.goto(f"/h/{secret}?lang=en")
    assert page.locator("h1").inner_text() == "My certificates"
    assert page.locator(".held__item").count() == 3  # KZ, RU and TM
    rows = page.locator("ol.checks li")
    assert rows.count() == 2
    # newest first: the anonymous check came last
    sentences = page.locator(".checks__sentence").all_inner_texts()
    assert sentences == [
        "Someone checked it without an account and saw it valid.",
        "employer test client checked it and saw it valid.",
    ]
    pdf = page.locator(f"a[href^='/api/v1/certificates/{issued.id}/certificate.pdf']")
    response = page.request.get(pdf.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "holder-en-360")
    page.goto(f"/h/{secret}")  # the holder's own language (Tajik citizenship) by default
    assert page.locator("html").get_attribute("lang") == "tg"
    shot(page, "holder-tg-360")
    assert page.problems == []


def test_pages_carry_no_inline_script_and_breach_no_policy(world: World, page: Any) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    response = page.goto("/verify?lang=kk")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("[style]").count() == 0
    assert violations == []

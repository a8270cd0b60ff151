"""The employer and holder pages in headless Chromium: typed, uploaded and scanned QR codes,
every verdict, a 360-pixel phone screen, six languages, and no Content-Security-Policy breach.

Screenshots go to ``$REGISTRY_SCREENSHOTS`` (default ``/tmp/registry-screenshots``) for review.
The database half of these pages is covered on both backends by the API tests; the browser
tests run on SQLite only.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from registry.certificates import shc
from registry.certificates.holders import holder_secret
from tests.bundles import examination_bundle
from tests.conftest import registry_app
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

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("REGISTRY_SCREENSHOTS", "/tmp/registry-screenshots"))
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
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def app(database_url: str, keys_dir: Path) -> Iterator[Flask]:
    with registry_app(database_url, keys_dir, verify_rate_limit="10000 per minute") as app:
        yield app


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


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


def _camera_feed(text: str | None, path: Path) -> Path:
    """A Y4M video (what Chromium's fake camera plays) of the QR held in front of the lens."""
    from PIL import Image

    from registry.certificates.qr import qr_png

    width, height = 640, 480
    frame = Image.new("L", (width, height), 200)
    if text is not None:
        code = Image.open(io.BytesIO(qr_png(text, scale=4))).convert("L")
        side = min(height - 40, code.width)
        code = code.resize((side, side))
        frame.paste(code, ((width - side) // 2, (height - side) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * (width // 2 * height // 2)
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            video.write(b"FRAME\n" + luma + chroma + chroma)
    return path


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Chromium opens the fake camera's file when it starts, so the feed exists first and each
    # camera test rewrites it before opening the camera.
    path = tmp_path_factory.mktemp("camera") / "feed.y4m"
    _camera_feed(None, path)
    return path


@pytest.fixture(scope="module")
def browser(camera_file: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip(f"headless Chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_file}",
            ],
        )
        yield browser
        browser.close()


def watch_problems(page: Any) -> None:
    """Collect the page's console errors and uncaught exceptions in ``page.problems``."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems


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


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


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
    _shot(page, "verify-form-en-360")
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
    _shot(page, "verify-valid-en-360")
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
    _shot(page, "verify-upload-valid-en-360")
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
    _camera_feed(shc.qr_payload(card_of(world, issued)), camera_file)
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
        _shot(page, f"verdict-{result}-en-360")
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
    _shot(page, "verify-valid-ru-360")
    titles = {}
    for language in ("en", "ru", "kk", "ky", "tg", "uz"):
        page.goto(f"/verify?lang={language}")
        titles[language] = page.locator("h1").inner_text()
        assert page.locator(".languages__item--current").get_attribute("lang") == language
        _shot(page, f"verify-form-{language}-360")
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
    _shot(page, "holder-en-360")
    page.goto(f"/h/{secret}")  # the holder's own language (Tajik citizenship) by default
    assert page.locator("html").get_attribute("lang") == "tg"
    _shot(page, "holder-tg-360")
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

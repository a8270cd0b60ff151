"""What the browser tests share: headless Chromium, its fake camera, axe-core, screenshots.

The fixtures (one Chromium and one live registry for the whole run) are in tests/conftest.py;
a test marked ``browser`` asks for ``browser`` and ``live_server``. Screenshots go to
``$REGISTRY_SCREENSHOTS`` (default ``/tmp/registry-screenshots``) for review.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("REGISTRY_SCREENSHOTS", "/tmp/registry-screenshots"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# WCAG 2.1 A and AA: the rules the dashboard promises (docs/surveillance.md)
WCAG21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


@contextmanager
def chromium(camera_file: Path) -> Iterator[Any]:
    """Headless Chromium whose camera plays ``camera_file`` (see ``camera_feed``)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip(f"headless Chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_file}",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def camera_feed(text: str | None, path: Path) -> Path:
    """A Y4M video (what Chromium's fake camera plays) of the QR held in front of the lens.

    Chromium opens the file when it starts, so the feed exists first and each camera test
    rewrites it before opening the camera."""
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


def watch_problems(page: Any) -> list[str]:
    """Collect the page's console errors and uncaught exceptions in ``page.problems``."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    return problems


def shot(page: Any, name: str) -> None:
    """A full-page screenshot for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, scale="css")


@functools.cache
def _axe_source() -> str:
    return AXE.read_text("utf-8")


def axe_violations(page: Any, *, tags: Sequence[str] = ()) -> list[str]:
    """axe-core's violations on the page, each ``id: help (targets)``; ``tags`` limits the rules.

    axe is evaluated in the page rather than added as a script, so the page's own
    Content-Security-Policy stays in force while it runs."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    options = {"runOnly": list(tags)} if tags else {}
    passed, violations = page.evaluate(
        """async options => {
          const result = await axe.run(document, options);
          return [result.passes.length, result.violations.map(
            v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(" ")).join(", ")})`)];
        }""",
        options,
    )
    assert passed > 10, f"axe-core ran too few rules: {passed} passed"
    return list(violations)

"""The printed certificate: one page, both languages, the id and QR, and no medical results."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.certificates import shc
from registry.certificates.labels import COUNTRIES, LABELS, LANGUAGES, PURPOSES
from registry.certificates.pdf import (
    CertificateView,
    render_certificate_html,
    render_certificate_pdf,
)

Arguments = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def view(card_arguments: Arguments) -> CertificateView:
    from registry.crypto.keys import generate_key, public_jwk, thumbprint

    key = generate_key()
    token = shc.encode_card(shc.build_payload(**card_arguments()), key, thumbprint(public_jwk(key)))
    return CertificateView(
        certificate_id="KZ-7F3K-9QPX",
        family_name="Абдурахмонзода-Шарифова",
        given_names=("Гулчехра", "Абдукаххоровна"),
        birth_date=date(1991, 4, 27),
        destination="KZ",
        purpose="pre-departure",
        clinic_id="TJ-DUS-0007",
        clinic_name="Медицинский центр «Шифо»",
        issued_at=datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
        valid_from=date(2025, 3, 3),
        valid_until=date(2025, 5, 31),
        qr_text=shc.qr_payload(token),
        base_url="https://registry.example.org/",
    )


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    match = re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE)
    assert match
    return int(match[1])


@pytest.mark.parametrize("language", LANGUAGES)
def test_certificate_prints_on_one_page_in_the_holder_language_and_russian(
    view: CertificateView, language: str, tmp_path: Path
) -> None:
    pdf = render_certificate_pdf(view, holder_language=language)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf, tmp_path)
    assert "KZ-7F3K-9QPX" in text
    assert "Абдурахмонзода-Шарифова".upper() in text
    assert "27.04.1991" in text and "03.03.2025" in text and "31.05.2025" in text
    assert "TJ-DUS-0007" in text
    # the paper handed to employers carries no holder secret: that is on the holder slip
    assert "/h/" not in text.replace("\n", "").replace(" ", "")
    assert "https://registry.example.org/verify" in text
    second = "en" if language == "ru" else "ru"
    for shown in (language, second):
        assert LABELS[shown]["certificate_id"] in text
        assert COUNTRIES[shown]["KZ"] in text
        assert PURPOSES[shown]["pre-departure"] in text
    assert pdf_pages(pdf, tmp_path) == 1


def test_certificate_never_prints_a_result_or_diagnosis(
    view: CertificateView, tmp_path: Path
) -> None:
    text = pdf_text(render_certificate_pdf(view, holder_language="en"), tmp_path).lower()
    for word in ("positive", "negative", "hiv", "tubercul", "syphilis", "x-ray", "вич", "туберкул"):
        assert word not in text


def test_a_long_name_and_clinic_still_fit_one_a5_page(
    view: CertificateView, tmp_path: Path
) -> None:
    crowded = replace(
        view,
        family_name="Абдурахмонзода-Шарифова-Исфандиёрзода-Нуриддинзода",
        given_names=("Гулчехрамоҳинисо", "Абдукаххоровна", "Сайфиддиновна", "Мавлонбекова"),
        clinic_name=(
            "Государственное учреждение «Городской центр профилактики и борьбы со СПИДом» "
            "г. Душанбе имени академика Абуали ибни Сино при Министерстве здравоохранения"
        ),
    )
    for language in ("tg", "ky"):
        pdf = render_certificate_pdf(crowded, holder_language=language)
        assert pdf_pages(pdf, tmp_path) == 1
        assert "KZ-7F3K-9QPX" in pdf_text(pdf, tmp_path)


def test_a4_is_available(view: CertificateView, tmp_path: Path) -> None:
    pdf = render_certificate_pdf(view, holder_language="uz", paper="A4")
    assert pdf_pages(pdf, tmp_path) == 1
    assert "KZ-7F3K-9QPX" in pdf_text(pdf, tmp_path)


def test_names_are_escaped_not_interpreted(view: CertificateView) -> None:
    hostile = replace(view, family_name='<img src="https://evil.example/x.png">')
    html = render_certificate_html(hostile, holder_language="en")
    assert '<img src="https://evil.example' not in html
    assert "&lt;img" in html
    # Even a rendering that did hold a remote URL could not fetch it.
    assert render_certificate_pdf(hostile, holder_language="en").startswith(b"%PDF-")


def test_unknown_language_or_paper_is_refused(view: CertificateView) -> None:
    with pytest.raises(ValueError, match="holder_language"):
        render_certificate_pdf(view, holder_language="de")
    with pytest.raises(ValueError, match="A5 or A4"):
        render_certificate_pdf(view, holder_language="ru", paper="Letter")

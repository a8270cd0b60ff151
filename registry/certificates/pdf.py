"""The printable certificate: A5 (or A4) PDF in the holder's language beside Russian.

It shows the QR code, the certificate number, destination and purpose, validity, clinic and
holder, and says that it holds no medical results (it holds none: the view it is rendered from
has no field for one). It carries no holder secret: the migrant hands it to employers. The
holder's private link and recovery code are on the holder slip, a page of its own
(``render_slip_pdf``) marked to be kept and never shown.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jinja2
import weasyprint

from registry.certificates.labels import COUNTRIES, LABELS, LANGUAGES, PURPOSES, SLIP_LABELS
from registry.certificates.qr import qr_svg

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAPER_MARGINS = {"A5": "8mm", "A4": "14mm"}

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class CertificateView:
    """Everything a printed certificate shows, and nothing clinical."""

    certificate_id: str
    family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    destination: str
    purpose: str
    clinic_id: str
    clinic_name: str
    issued_at: datetime
    valid_from: date
    valid_until: date
    qr_text: str
    base_url: str

    @property
    def verify_link(self) -> str:
        """The public page where an employer checks a certificate by number and birth date."""
        return f"{self.base_url.rstrip('/')}/verify"


def _day(value: date) -> str:
    # Day.month.year is how all six audiences write dates; no locale data needed.
    return value.strftime("%d.%m.%Y")


def _column(language: str, view: CertificateView) -> dict[str, Any]:
    return {
        "code": language,
        "labels": LABELS[language],
        "destination": COUNTRIES[language].get(view.destination, view.destination),
        "purpose": PURPOSES[language].get(view.purpose, view.purpose),
    }


def render_certificate_html(
    view: CertificateView, *, holder_language: str, paper: str = "A5", compact: bool = False
) -> str:
    """The certificate as HTML, the holder's language first and Russian second."""
    if holder_language not in LANGUAGES:
        raise ValueError(f"holder_language must be one of {', '.join(LANGUAGES)}")
    if paper not in PAPER_MARGINS:
        raise ValueError("paper must be A5 or A4")
    # A Russian-speaking holder gets English beside Russian rather than Russian twice.
    second = "en" if holder_language == "ru" else "ru"
    svg = qr_svg(view.qr_text, size_attributes=False)
    issued = view.issued_at.astimezone(UTC)
    return _environment.get_template("certificates/certificate.html").render(
        view=view,
        paper=paper,
        compact=compact,
        margin=PAPER_MARGINS[paper],
        labels=LABELS,
        first=_column(holder_language, view),
        second=_column(second, view),
        qr_data_uri="data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"),
        birth_date=_day(view.birth_date),
        valid_from=_day(view.valid_from),
        valid_until=_day(view.valid_until),
        issued_at=f"{_day(issued.date())} {issued:%H:%M} UTC",
    )


def render_certificate_pdf(
    view: CertificateView, *, holder_language: str, paper: str = "A5"
) -> bytes:
    """The printable certificate as PDF bytes, on one page whenever the names allow it."""
    # The page embeds its only image; refusing every other scheme keeps a rendering from ever
    # touching the network or the file system.
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    document = None
    # Very long names and clinic names can push the last lines over the page; a second
    # rendering in the compact style (smaller QR and type) keeps the certificate one sheet.
    for compact in (False, True):
        html = render_certificate_html(
            view, holder_language=holder_language, paper=paper, compact=compact
        )
        document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
        if len(document.pages) == 1:
            break
    assert document is not None
    pdf = document.write_pdf()
    assert pdf is not None  # write_pdf returns bytes when no target is given
    return bytes(pdf)


@dataclass(frozen=True)
class SlipView:
    """The holder slip: the private link, the recovery code and the certificates it opens."""

    family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    certificates: tuple[tuple[str, str], ...]  # (certificate id, destination)
    base_url: str
    holder_secret: str
    recovery_code: str

    @property
    def holder_link(self) -> str:
        """The holder's private page."""
        return f"{self.base_url.rstrip('/')}/h/{self.holder_secret}"

    @property
    def recovery_link(self) -> str:
        """Where a holder who lost the link types a certificate number and the recovery code."""
        return f"{self.base_url.rstrip('/')}/h"


def render_slip_html(view: SlipView, *, holder_language: str) -> str:
    """The holder slip as HTML, the holder's language first and Russian (or English) second."""
    if holder_language not in LANGUAGES:
        raise ValueError(f"holder_language must be one of {', '.join(LANGUAGES)}")
    second = "en" if holder_language == "ru" else "ru"
    return _environment.get_template("certificates/slip.html").render(
        view=view,
        first={"code": holder_language, "labels": SLIP_LABELS[holder_language]},
        second={"code": second, "labels": SLIP_LABELS[second]},
        countries=COUNTRIES[holder_language],
        birth_date=_day(view.birth_date),
    )


def render_slip_pdf(view: SlipView, *, holder_language: str) -> bytes:
    """The holder slip as a one-page A6 PDF."""
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    html = render_slip_html(view, holder_language=holder_language)
    pdf = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)

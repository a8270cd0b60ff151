"""The pages without a browser: catalogues complete and compiled, headers, holder page, logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates.holders import holder_secret
from registry.pages import LANGUAGES
from tests.support import World
from tests.verification.helpers import BIRTH_DATE, certificate, publish, qr_of, verify

REPOSITORY = Path(__file__).resolve().parents[2]
TRANSLATIONS = REPOSITORY / "registry" / "translations"
TITLES = {
    "en": "Check a medical examination certificate",
    "ru": "Проверка сертификата о медицинском освидетельствовании",
    "kk": "Медициналық куәландыру сертификатын тексеру",
    "ky": "Медициналык кароо сертификатын текшерүү",
    "tg": "Санҷиши шаҳодатномаи муоинаи тиббӣ",
    "uz": "Tibbiy koʻrik sertifikatini tekshirish",
}


def _page_messages() -> set[str]:
    """Every message of the pages the catalogues serve, as babel.cfg says where they are."""
    with (TRANSLATIONS / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(REPOSITORY),
            method_map=method_map,
            options_map=options_map,
            keywords={**DEFAULT_KEYWORDS, "_l": None},  # lazy_gettext, as the cfg's -k _l
        )
        if isinstance(message, str)
    }


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_each_catalogue_translates_every_message_of_the_pages(language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id: m.string for m in catalog if m.id}
    assert set(translated) == _page_messages()
    if language != "en":
        assert [msgid for msgid, text in translated.items() if not text] == []
        assert not [m.id for m in catalog if m.id and m.fuzzy]


def _messages(catalog: Catalog) -> dict[object, object]:
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_compiled_catalogue_holds_what_the_po_file_says(language: str) -> None:
    # a fresh clone needs no compile step, so the .mo in the repository must be current; its
    # bytes also name the Babel version that wrote them, so the messages are compared instead
    folder = TRANSLATIONS / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        source = read_po(handle)
    with (folder / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert _messages(compiled) == _messages(source)


def test_the_page_speaks_each_language_and_follows_the_browser(world: World) -> None:
    for language, title in TITLES.items():
        page = world.http.get(f"/verify?lang={language}").get_data(as_text=True)
        assert f'<html lang="{language}">' in page
        assert f'<h1 class="title">{title}</h1>' in page
    preferred = world.http.get("/verify", headers={"Accept-Language": "ky, ru;q=0.8"})
    assert f'<h1 class="title">{TITLES["ky"]}</h1>' in preferred.get_data(as_text=True)
    unknown = world.http.get("/verify?lang=xx", headers={"Accept-Language": "de"})
    assert f'<h1 class="title">{TITLES["en"]}</h1>' in unknown.get_data(as_text=True)


def test_pages_forbid_inline_scripts_and_framing(world: World) -> None:
    response = world.http.get("/verify")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Permissions-Policy"].startswith("camera=(self)")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_the_form_post_answers_on_the_page_and_is_logged_as_the_page(world: World) -> None:
    from registry.verification.models import VerificationEvent

    publish(world)
    issued = certificate(world)
    response = world.http.post(
        "/verify", data={"certificate_id": issued.id, "birth_date": BIRTH_DATE, "lang": "ru"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-result="valid"' in html and "Соответствует требованиям: Казахстан" in html
    assert response.headers["Cache-Control"] == "no-store"
    garbage = world.http.post("/verify", data={"qr": "hello", "lang": "en"})
    assert 'data-result="malformed"' in garbage.get_data(as_text=True)
    with world.ctx.db.read_session() as session:
        channels = session.scalars(select(VerificationEvent.channel)).all()
    assert channels == ["page"]


def test_the_holder_page_is_private_and_audited(world: World) -> None:
    publish(world)
    issued = certificate(world)
    verify(world, {"qr": qr_of(world, issued)}, headers=world.bearer("employer"))
    secret = holder_secret(world.ctx.keystore, examination_id=issued.examination_id)
    response = world.http.get(f"/h/{secret}?lang=en")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert response.headers["Cache-Control"] == "no-store"
    assert issued.id in html and "employer test client" in html
    assert f"/api/v1/certificates/{issued.id}/card.smart-health-card?h={secret}" in html
    with world.ctx.db.read_session() as session:
        reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "holder.read")).all()
    assert [(e.actor, e.role) for e in reads] == [("holder", "holder")]


def test_an_unknown_holder_link_is_a_plain_404_page(world: World) -> None:
    response = world.http.get("/h/not-a-secret-at-all?lang=en")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "This link does not open any certificate" in response.get_data(as_text=True)

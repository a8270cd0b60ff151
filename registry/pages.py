"""What every HTML page of the registry shares: its languages and its security headers.

Languages: gettext catalogues under ``registry/translations``.

The catalogues are flask-babel's (``messages.po`` and the compiled ``messages.mo``, both kept in
the repository so a fresh clone needs no compile step). A page's language comes from ``?lang=``
(or the form's ``lang``), else from the browser's Accept-Language, else English.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from flask import Flask, Response, g, request
from flask_babel import Babel

# In the order the language switch shows them, each named in its own language.
LANGUAGES: Mapping[str, str] = {
    "en": "English",
    "ru": "Русский",
    "kk": "Қазақша",
    "ky": "Кыргызча",
    "tg": "Тоҷикӣ",
    "uz": "Oʻzbekcha",
}
DEFAULT_LANGUAGE = "en"


def choose_language(requested: str | None) -> str:
    """The page language for this request (also remembered for gettext)."""
    if requested in LANGUAGES:
        language = str(requested)
    else:
        language = request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE
    g.language = language
    return language


def _locale() -> str:
    language: str = g.get("language") or DEFAULT_LANGUAGE
    return language


def day(value: date | str | None) -> str:
    """A date as the region's documents write it: 14.03.1991."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%d.%m.%Y")
        except ValueError:
            return value  # a partial date, e.g. 1991-03, as another issuer's card may carry
    return value.strftime("%d.%m.%Y")


def moment(value: datetime | None) -> str:
    """A time in UTC, day first: 22.11.2026 14:03 UTC."""
    return value.strftime("%d.%m.%Y %H:%M UTC") if value is not None else ""


def init_app(app: Flask) -> None:
    """Install flask-babel (once per app) and the page filters."""
    if "babel" not in app.extensions:
        Babel(app, locale_selector=_locale, default_translation_directories="translations")
    app.jinja_env.filters.setdefault("day", day)
    app.jinja_env.filters.setdefault("moment", moment)


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def page_headers(response: Response) -> Response:
    """What every HTML page of the registry is served with: no inline code, no framing, no cache."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response

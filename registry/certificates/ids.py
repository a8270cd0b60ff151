"""Short, typable certificate ids such as ``KZ-7F3K-9QPX``.

An id is the destination's ISO 3166-1 alpha-2 code and eight characters from an alphabet without
the glyphs people confuse on paper and on phone keyboards (0/O, 1/I/L, U). The eighth
character is a Luhn mod N check character, so a mistyped or swapped character is caught before
any lookup reaches the database.

Seven random characters give 30**7 (about 2**34) ids per destination: far too many to guess
together with a birth date under rate limiting, but enough that two certificates can collide
over millions of issues. The issuing service stores ids under a unique constraint and draws
again on a collision.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH = 7
_INDEX = {character: position for position, character in enumerate(ALPHABET)}
_DESTINATION = re.compile(r"[A-Z]{2}")

# Look-alikes that arrive from Cyrillic keyboards (Russian, Kazakh, Kyrgyz, Tajik) or from a
# quick reading of the printed id. Only unambiguous mappings: the excluded glyphs 0, O, 1, I, L
# and U are refused with a clear message instead of being guessed.
_LETTER_CONFUSABLES = str.maketrans(
    {
        "А": "A",
        "В": "B",
        "С": "C",
        "Е": "E",
        "Н": "H",
        "К": "K",
        "М": "M",
        "Р": "P",
        "Т": "T",
        "Х": "X",
        "У": "Y",
        "Ү": "Y",
        "Ѕ": "S",
    }
)
# Only in the random part: the country code has no digits.
_DIGIT_CONFUSABLES = str.maketrans({"З": "3"})
# Spaces, hyphens and dashes of every kind, underscores, dots and slashes people type between
# the groups.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_./]+")


class InvalidCertificateId(ValueError):
    """Text that is not a well-formed certificate id; ``code`` says which way."""

    def __init__(self, message: str, *, code: str = "number-format") -> None:
        super().__init__(message)
        self.code = code  # number-format, or number-check: one character is wrong


def _check_character(body: str) -> str:
    """The Luhn mod N check character over ``body`` (alphabet characters only)."""
    base = len(ALPHABET)
    factor = 2
    total = 0
    for character in reversed(body):
        addend = factor * _INDEX[character]
        addend = addend // base + addend % base
        total += addend
        factor = 1 if factor == 2 else 2
    return ALPHABET[(base - total % base) % base]


def new_certificate_id(destination: str) -> str:
    """A fresh random certificate id for a destination, e.g. ``KZ-7F3K-9QPX``."""
    if not isinstance(destination, str) or not _DESTINATION.fullmatch(destination):
        raise ValueError(f"destination must be an ISO 3166-1 alpha-2 code, not {destination!r}")
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    body += _check_character(body)
    return f"{destination}-{body[:4]}-{body[4:]}"


def normalise_certificate_id(text: str) -> str:
    """The canonical form of a typed certificate id; raises InvalidCertificateId otherwise."""
    if not isinstance(text, str):
        raise InvalidCertificateId("a certificate number is text")
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text).upper())
    compact = compact.translate(_LETTER_CONFUSABLES)
    if len(compact) != 2 + RANDOM_LENGTH + 1:
        raise InvalidCertificateId(
            "a certificate number has two letters and eight characters, e.g. KZ-7F3K-9QPX"
        )
    destination, body = compact[:2], compact[2:].translate(_DIGIT_CONFUSABLES)
    if not _DESTINATION.fullmatch(destination):
        raise InvalidCertificateId("a certificate number starts with a two-letter country code")
    unknown = sorted({character for character in body if character not in _INDEX})
    if unknown:
        raise InvalidCertificateId(
            f"a certificate number never contains {', '.join(unknown)} "
            "(it has no 0, O, 1, I, L or U)"
        )
    if _check_character(body[:-1]) != body[-1]:
        raise InvalidCertificateId(
            "one character of the certificate number is wrong (a typing error: the check "
            "character does not match)",
            code="number-check",
        )
    return f"{destination}-{body[:4]}-{body[4:]}"


def is_certificate_id(text: str) -> bool:
    """Whether ``text`` is a certificate id in canonical form."""
    try:
        return normalise_certificate_id(text) == text
    except InvalidCertificateId:
        return False

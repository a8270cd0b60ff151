"""Certificate ids: short, typable, checked, and forgiving of how people type them."""

from __future__ import annotations

import re

import pytest

from registry.certificates.ids import (
    ALPHABET,
    InvalidCertificateId,
    is_certificate_id,
    new_certificate_id,
    normalise_certificate_id,
)

CANONICAL = re.compile(
    r"[A-Z]{2}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}"
)


def test_new_ids_have_the_destination_prefix_and_no_ambiguous_characters() -> None:
    ids = {new_certificate_id("KZ") for _ in range(2000)}
    assert len(ids) == 2000
    for certificate_id in ids:
        assert CANONICAL.fullmatch(certificate_id)
        assert not set(certificate_id[3:]) & set("0O1ILU")
        assert normalise_certificate_id(certificate_id) == certificate_id


def test_alphabet_excludes_look_alike_glyphs() -> None:
    assert len(ALPHABET) == 30
    assert not set(ALPHABET) & set("0O1ILU")


@pytest.mark.parametrize("destination", ["kz", "KAZ", "K", "", "1Z"])
def test_new_id_refuses_a_destination_that_is_not_alpha_2(destination: str) -> None:
    with pytest.raises(ValueError):
        new_certificate_id(destination)


@pytest.mark.parametrize(
    "typed",
    [
        "{id}",
        "{lower}",
        "{compact}",
        "  {spaced}  ",
        "{en_dash}",
        "{cyrillic}",
        "{fullwidth}",
    ],
)
def test_normalise_accepts_lower_case_spaces_dashes_and_cyrillic_look_alikes(typed: str) -> None:
    certificate_id = "RU-AKM3-HT7" + _check_for("AKM3HT7")
    body = certificate_id[3:].replace("-", "")
    variants = {
        "id": certificate_id,
        "lower": certificate_id.lower(),
        "compact": certificate_id.replace("-", ""),
        "spaced": f"ru {body[:4]} {body[4:]}",
        "en_dash": certificate_id.replace("-", "–"),
        # Cyrillic А, К, М, Н, Т and З typed for A, K, M, H, T and 3.
        "cyrillic": "RU-АКМЗ-НТ7" + certificate_id[-1],
        "fullwidth": "ＲＵ－" + certificate_id[3:],
    }
    assert normalise_certificate_id(typed.format(**variants)) == certificate_id


def _check_for(body: str) -> str:
    for candidate in ALPHABET:
        try:
            normalise_certificate_id(f"KZ-{body[:4]}-{body[4:]}{candidate}")
        except InvalidCertificateId:
            continue
        return candidate
    raise AssertionError("no check character fits")


def test_every_single_character_typing_error_is_caught() -> None:
    certificate_id = new_certificate_id("KZ")
    body = certificate_id[3:].replace("-", "")
    for position in range(len(body)):
        for replacement in ALPHABET:
            if replacement == body[position]:
                continue
            typo = body[:position] + replacement + body[position + 1 :]
            with pytest.raises(InvalidCertificateId, match="typing error"):
                normalise_certificate_id(f"KZ{typo}")


def test_swapped_neighbours_are_caught_except_the_luhn_blind_pair() -> None:
    # Luhn mod N misses only the swap of the first and last alphabet characters ("2" and "Z").
    for _ in range(300):
        body = new_certificate_id("TM")[3:].replace("-", "")
        for i in range(len(body) - 1):
            if body[i] == body[i + 1] or {body[i], body[i + 1]} == {"2", "Z"}:
                continue
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert not is_certificate_id(f"TM-{swapped[:4]}-{swapped[4:]}")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("KZ-7F3K-9QP", "two letters and eight characters"),
        ("KZ-7F3K-9QPXX", "two letters and eight characters"),
        ("12-7F3K-9QPX", "country code"),
        ("KZ-7F0K-9QPX", "never contains 0"),
        ("KZ-7FOK-9QPX", "never contains O"),
        ("KZ-7F1K-9QPX", "never contains 1"),
        ("KZ-7FIK-9QPX", "never contains I"),
        ("KZ-7FLK-9QPX", "never contains L"),
        ("KZ-7FUK-9QPX", "never contains U"),
    ],
)
def test_normalise_names_what_is_wrong(typed: str, message: str) -> None:
    with pytest.raises(InvalidCertificateId, match=message):
        normalise_certificate_id(typed)


def test_is_certificate_id_only_accepts_the_canonical_form() -> None:
    certificate_id = new_certificate_id("KZ")
    assert is_certificate_id(certificate_id)
    assert not is_certificate_id(certificate_id.lower())
    assert not is_certificate_id("not an id")

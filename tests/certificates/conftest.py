"""Shared fixtures for the certificate tests: rulesets, a registry key, a sample card."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.certificates import shc
from registry.certificates.rulesets import Ruleset, load_ruleset
from registry.crypto.keys import PrivateKey, generate_key, public_jwk, thumbprint

REPOSITORY = Path(__file__).resolve().parents[2]
RULESETS_DIR = REPOSITORY / "fhir_profiles" / "rulesets"
SHC_EXAMPLES = Path("/work/shared/testdata/shc-spec-examples")

# The long name from real registrations: Tajik family name with a hyphenated second family
# name, given name and patronymic, all in Cyrillic.
LONG_FAMILY_NAME = "Абдурахмонзода-Шарифова"
LONG_GIVEN_NAMES = ("Гулчехра", "Абдукаххоровна")


def _ruleset_document(destination: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (RULESETS_DIR / f"{destination}.v1.json").read_text("utf-8")
    )
    return document


@pytest.fixture(scope="session")
def rulesets_dir() -> Path:
    return RULESETS_DIR


@pytest.fixture(scope="session")
def shc_examples() -> Path:
    if not SHC_EXAMPLES.is_dir():
        pytest.skip("the SMART Health Cards conformance vectors are not on this machine")
    return SHC_EXAMPLES


@pytest.fixture(scope="session")
def ruleset_document() -> Callable[[str], dict[str, Any]]:
    """A fresh copy of the shipped JSON document of a destination's ruleset, version 1."""
    return _ruleset_document


@pytest.fixture(scope="session")
def kz() -> Ruleset:
    return load_ruleset(_ruleset_document("KZ"))


@pytest.fixture(scope="session")
def ru() -> Ruleset:
    return load_ruleset(_ruleset_document("RU"))


@pytest.fixture(scope="session")
def tm() -> Ruleset:
    return load_ruleset(_ruleset_document("TM"))


@pytest.fixture(scope="session")
def registry_key() -> tuple[PrivateKey, str]:
    key = generate_key()
    return key, thumbprint(public_jwk(key))


def _card_arguments(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "issuer": "https://registry.example.org",
        "certificate_id": "KZ-7F3K-9QPX",
        "family_name": LONG_FAMILY_NAME,
        "given_names": LONG_GIVEN_NAMES,
        "birth_date": date(1991, 4, 27),
        "destination": "KZ",
        "purpose": "pre-departure",
        "clinic_id": "TJ-DUS-0007",
        "clinic_name": "Медицинский центр «Шифо»",
        "issued_at": datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
        "valid_from": date(2025, 3, 3),
        "valid_until": date(2025, 5, 31),
        "rid": "MKyCxh7p6uQ",
    }
    arguments.update(overrides)
    return arguments


@pytest.fixture(scope="session")
def card_arguments() -> Callable[..., dict[str, Any]]:
    """build_payload arguments for a typical certificate with a long Cyrillic name, overridable."""
    return _card_arguments


@pytest.fixture
def card(registry_key: tuple[PrivateKey, str]) -> str:
    """A signed card with the long name, a Cyrillic clinic name and the examination hash."""
    key, kid = registry_key
    payload = shc.build_payload(**_card_arguments(examination_sha256="ab" * 32))
    return shc.encode_card(payload, key, kid)

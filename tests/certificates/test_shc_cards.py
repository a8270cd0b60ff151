"""Our certificate cards: exact structure, nothing clinical, one QR, revocation ids and lists."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.certificates import shc
from registry.certificates.rulesets import CONCEPTS, OUTCOMES_BY_CONCEPT, PURPOSES
from registry.crypto.jws import JWSError
from registry.crypto.keys import PrivateKey, b64url, generate_key, public_jwk, thumbprint

Arguments = Callable[..., dict[str, Any]]
Key = tuple[PrivateKey, str]

# Nothing on a card may name a test, a result or a diagnosis. LOINC codes of the panel (and
# neighbours a clinic might send), SNOMED CT result and finding codes, our concept keys and
# the words of every outcome.
DENIED_CODES = {
    "36643-5",
    "24648-8",
    "85362-2",
    "88142-5",
    "89365-1",
    "75622-1",
    "20507-0",
    "22587-0",
    "5196-1",
    "13955-0",
    "10828004",
    "260385009",
    "260373001",
    "260415000",
    "419984006",
    "56717001",
    "86406008",
    "76272004",
    "81004002",
    "66071002",
    "6142004",
}
DENIED_WORDS = {
    *CONCEPTS,
    *(outcome for outcomes in OUTCOMES_BY_CONCEPT.values() for outcome in outcomes),
    "reactive",
    "detected",
    "tubercul",
    "hiv",
    "syphilis",
    "leprosy",
    "hepatitis",
    "loinc",
    "snomed",
    "diagnos",
    "result",
}
LOINC_LIKE = re.compile(r"(?<![\w-])\d{3,5}-\d(?![\w-])")


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every (path, scalar value) in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def keys_in(value: Any) -> set[str]:
    """Every object member name anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(keys_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_in(item) for item in value))
    return set()


# --- structure -------------------------------------------------------------------------------


def test_decoded_card_has_exactly_the_shc_structure(card: str, registry_key: Key) -> None:
    header, payload = shc.decode_card(card)
    assert header == {"alg": "ES256", "kid": registry_key[1], "zip": "DEF"}
    assert set(payload) == {"iss", "nbf", "exp", "vc"}
    assert payload["iss"] == "https://registry.example.org"
    assert payload["nbf"] == int(datetime(2025, 3, 4, 9, 30, tzinfo=UTC).timestamp())
    # exp is the end of the last valid day (midnight UTC after 31 May).
    assert payload["exp"] == int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
    vc = payload["vc"]
    assert set(vc) == {"type", "credentialSubject", "rid"}
    assert vc["type"] == [
        "https://smarthealth.cards#health-card",
    ]
    assert vc["rid"] == "MKyCxh7p6uQ"
    subject = vc["credentialSubject"]
    assert set(subject) == {"fhirVersion", "fhirBundle"}
    assert subject["fhirVersion"] == "4.0.1"
    bundle = subject["fhirBundle"]
    assert set(bundle) == {"resourceType", "type", "entry"}
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    assert [e["fullUrl"] for e in bundle["entry"]] == ["resource:0", "resource:1"]
    patient, observation = (e["resource"] for e in bundle["entry"])
    assert patient == {
        "resourceType": "Patient",
        "name": [{"family": "Абдурахмонзода-Шарифова", "given": ["Гулчехра", "Абдукаххоровна"]}],
        "birthDate": "1991-04-27",
    }
    assert set(observation) == {
        "resourceType",
        "identifier",
        "status",
        "code",
        "subject",
        "effectivePeriod",
        "issued",
        "performer",
        "derivedFrom",
        "component",
    }
    assert observation["status"] == "final"
    assert observation["code"] == {
        "coding": [
            {
                "system": "https://exam-registry.org/fhir/CodeSystem/certificate-statement",
                "code": "meets-examination-requirements",
            }
        ]
    }
    assert observation["subject"] == {"reference": "resource:0"}
    assert observation["identifier"] == [
        {"system": "https://exam-registry.org/fhir/certificate-id", "value": "KZ-7F3K-9QPX"}
    ]
    assert observation["effectivePeriod"] == {"start": "2025-03-03", "end": "2025-05-31"}
    assert observation["issued"] == "2025-03-04T09:30:00Z"
    assert observation["performer"] == [
        {
            "identifier": {
                "system": "https://exam-registry.org/fhir/clinic-id",
                "value": "TJ-DUS-0007",
            }
        }
    ]
    assert observation["derivedFrom"][0]["identifier"]["value"] == "ab" * 32
    assert [c["code"]["coding"][0]["code"] for c in observation["component"]] == [
        "destination",
        "purpose",
        "clinic-name",
    ]


def test_card_has_no_id_meta_text_or_display_anywhere(card: str) -> None:
    _, payload = shc.decode_card(card)
    assert not keys_in(payload) & {"id", "meta", "text", "display"}
    references = [v for p, v in walk(payload) if p.endswith(".reference")]
    assert references and all(re.fullmatch(r"resource:\d+", r) for r in references)


def test_payload_is_minified_raw_deflate(card: str) -> None:
    compressed = base64.urlsafe_b64decode(card.split(".")[1] + "==")
    raw = zlib.decompress(compressed, wbits=-15)
    with pytest.raises(zlib.error):
        zlib.decompress(compressed)  # no zlib header: raw DEFLATE
    _, payload = shc.decode_card(card)
    assert raw == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert b"\\u" not in raw  # Cyrillic stays UTF-8, a third of the size of escapes


def test_card_verifies_with_the_registry_key_only(card: str, registry_key: Key) -> None:
    key, _ = registry_key
    assert shc.verify_card(card, key.public_key()) == shc.decode_card(card)[1]
    with pytest.raises(JWSError):
        shc.verify_card(card, generate_key().public_key())
    header, _, signature = card.split(".")
    other_key = generate_key()
    other = shc.encode_card(
        shc.build_payload(
            issuer="https://registry.example.org",
            certificate_id="KZ-7F3K-9QPX",
            family_name="Someone Else",
            given_names=(),
            birth_date=date(1990, 1, 1),
            destination="KZ",
            purpose="pre-departure",
            clinic_id="TJ-DUS-0007",
            clinic_name=None,
            issued_at=datetime(2025, 3, 4, tzinfo=UTC),
            valid_from=date(2025, 3, 3),
            valid_until=date(2025, 5, 31),
            rid="MKyCxh7p6uQ",
        ),
        other_key,
        thumbprint(public_jwk(other_key)),
    )
    spliced = f"{header}.{other.split('.')[1]}.{signature}"
    with pytest.raises(JWSError):
        shc.verify_card(spliced, key.public_key())


def test_read_certificate_gives_back_what_was_issued(card: str) -> None:
    claims = shc.read_certificate(shc.decode_card(card)[1])
    assert claims == shc.CertificateClaims(
        issuer="https://registry.example.org",
        certificate_id="KZ-7F3K-9QPX",
        family_name="Абдурахмонзода-Шарифова",
        given_names=("Гулчехра", "Абдукаххоровна"),
        birth_date="1991-04-27",
        destination="KZ",
        purpose="pre-departure",
        clinic_id="TJ-DUS-0007",
        clinic_name="Медицинский центр «Шифо»",
        issued_at=datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
        valid_from=date(2025, 3, 3),
        valid_until=date(2025, 5, 31),
        rid="MKyCxh7p6uQ",
        examination_sha256="ab" * 32,
    )
    assert shc.card_type(shc.decode_card(card)[1]) == "examination-certificate"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issuer": "https://registry.example.org/"}, "trailing slash"),
        ({"issuer": "http://registry.example.org"}, "https"),
        ({"issued_at": datetime(2025, 3, 4, 9, 30)}, "timezone-aware"),
        ({"valid_until": date(2025, 3, 2)}, "before valid_from"),
        ({"rid": "not a rid!"}, "base64url"),
        ({"family_name": " "}, "family_name"),
        ({"destination": "Kazakhstan"}, "alpha-2"),
        ({"purpose": "tourism"}, "purpose must be one of"),
    ],
)
def test_build_payload_refuses_bad_input(
    card_arguments: Arguments, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        shc.build_payload(**card_arguments(**overrides))


def test_encode_card_refuses_a_kid_that_is_not_the_key_thumbprint(
    card_arguments: Arguments, registry_key: Key
) -> None:
    with pytest.raises(ValueError, match="thumbprint"):
        shc.encode_card(shc.build_payload(**card_arguments()), generate_key(), registry_key[1])


def test_a_loopback_http_issuer_is_allowed_for_local_development(card_arguments: Arguments) -> None:
    payload = shc.build_payload(**card_arguments(issuer="http://127.0.0.1:8000"))
    assert payload["iss"] == "http://127.0.0.1:8000"


# --- one QR ----------------------------------------------------------------------------------


def test_the_long_cyrillic_name_fits_one_qr_untruncated(card: str) -> None:
    assert len(card) <= shc.MAX_SINGLE_QR_JWS
    patient = shc.decode_card(card)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]
    assert patient["resource"]["name"][0]["family"] == "Абдурахмонзода-Шарифова"


def test_very_long_names_are_shortened_deterministically_to_fit(
    card_arguments: Arguments, registry_key: Key
) -> None:
    key, kid = registry_key
    family = "Абдурахмонзода-Шарифова-Исфандиёрзода-Нуриддинзода-Хайруллоева"
    given = (
        "Гулчехрамоҳинисо",
        "Абдукаххоровна",
        "Сайфиддиновна",
        "Зарринатоҷбону",
        "Мавлонбекова",
        "Шамсиддинхоҷаевна",
    )
    arguments = card_arguments(
        family_name=family,
        given_names=given,
        clinic_name="Государственное учреждение «Городской центр профилактики» (Душанбе)",
        examination_sha256="cd" * 32,
    )
    payload = shc.build_payload(**arguments)
    assert payload == shc.build_payload(**arguments)
    token = shc.encode_card(payload, key, kid)
    assert len(token) == shc.projected_jws_length(payload) <= shc.MAX_SINGLE_QR_JWS
    entries = payload["vc"]["credentialSubject"]["fhirBundle"]["entry"]
    components = [c["code"]["coding"][0]["code"] for c in entries[1]["resource"]["component"]]
    name = entries[0]["resource"]["name"][0]
    # The clinic name goes first, then later given names become initials; the family name and
    # the first given name are kept whole.
    assert "clinic-name" not in components
    assert name["family"] == family
    assert name["given"][0] == "Гулчехрамоҳинисо"
    assert name["given"][-1] == "Ш."
    assert len(name["given"]) == len(given)


def test_an_absurd_family_name_is_cut_and_marked(
    card_arguments: Arguments, registry_key: Key
) -> None:
    key, kid = registry_key
    # Random letters, because a repeated name compresses too well to need cutting.
    letters = random.Random(7).choices("абвгдеёжзийклмнопрстуфхцчшщъыьэюяқҳҷӣӯғ", k=900)
    family = "".join(letters)
    payload = shc.build_payload(
        **card_arguments(family_name=family, given_names=("Гулчехра", "Абдукаххоровна"))
    )
    name = payload["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["name"][0]
    assert name["given"] == ["Г.", "А."]
    assert name["family"].endswith("…")
    assert family.startswith(name["family"].removesuffix("…"))
    assert len(name["family"]) > 60
    assert len(shc.encode_card(payload, key, kid)) <= shc.MAX_SINGLE_QR_JWS


# any character a bundle can carry: not NUL, not a lone surrogate (both refused at the door)
_NAME_CHARACTERS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.text(_NAME_CHARACTERS, min_size=1, max_size=120).filter(str.strip),
    given=st.lists(
        st.text(_NAME_CHARACTERS, min_size=1, max_size=60).filter(str.strip), max_size=4
    ),
    clinic=st.one_of(st.none(), st.text(_NAME_CHARACTERS, min_size=1, max_size=120)),
    destination=st.sampled_from(["KZ", "RU", "TM", "KG", "UZ", "TJ"]),
    purpose=st.sampled_from(PURPOSES),
    days=st.integers(min_value=1, max_value=3650),
)
def test_any_card_fits_one_qr_and_names_no_test_result_or_diagnosis(
    card_arguments: Arguments,
    registry_key: Key,
    family: str,
    given: list[str],
    clinic: str | None,
    destination: str,
    purpose: str,
    days: int,
) -> None:
    key, kid = registry_key
    payload = shc.build_payload(
        **card_arguments(
            family_name=family,
            given_names=tuple(given),
            clinic_name=clinic,
            destination=destination,
            purpose=purpose,
            valid_until=date(2025, 3, 3) + timedelta(days=days),
            certificate_id=f"{destination}-7F3K-9QPX",
        )
    )
    token = shc.encode_card(payload, key, kid)
    assert len(token) <= shc.MAX_SINGLE_QR_JWS
    assert shc.decode_card(token)[1] == payload
    # Everything the registry writes, leaving out the free text it was handed (names, clinic).
    written = [*keys_in(payload)] + [
        item
        for path, item in walk(payload)
        if isinstance(item, str)
        and not re.search(r"\.name\[\d+\]\.(family|given)", path)
        and not path.endswith(".valueString")
    ]
    for text in written:
        lowered = text.lower()
        assert not any(word in lowered for word in DENIED_WORDS), text
        assert not any(code in text for code in DENIED_CODES), text
        assert not LOINC_LIKE.search(text), text


# --- revocation ------------------------------------------------------------------------------


def test_rid_is_the_spec_construction_and_deterministic() -> None:
    secret = bytes(range(32))
    kid = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"
    rid = shc.compute_rid(secret, kid, "KZ-7F3K-9QPX")
    expected = hmac.new(secret + kid.encode(), b"KZ-7F3K-9QPX", hashlib.sha256).digest()[:8]
    assert rid == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert rid == shc.compute_rid(secret, kid, "KZ-7F3K-9QPX")
    assert len(rid) == 11 and re.fullmatch(r"[A-Za-z0-9_-]+", rid)
    assert rid != shc.compute_rid(secret, kid, "KZ-7F3K-9QPY")
    assert rid != shc.compute_rid(secret, "another-kid", "KZ-7F3K-9QPX")
    assert rid != shc.compute_rid(bytes(32), kid, "KZ-7F3K-9QPX")


def test_rid_needs_a_256_bit_secret() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        shc.compute_rid(b"short", "kid", "KZ-7F3K-9QPX")


def test_crl_document_has_the_spec_shape() -> None:
    revoked_at = datetime(2025, 4, 1, 12, tzinfo=UTC)
    crl = shc.crl_document(
        "kid-1", 3, [("bbbbbbbbbbb", None), ("aaaaaaaaaaa", revoked_at), ("bbbbbbbbbbb", None)]
    )
    assert crl == {
        "kid": "kid-1",
        "method": "rid",
        "ctr": 3,
        "rids": [f"aaaaaaaaaaa.{int(revoked_at.timestamp())}", "bbbbbbbbbbb"],
    }
    with pytest.raises(ValueError, match="starts at 1"):
        shc.crl_document("kid-1", 0, [])
    with pytest.raises(ValueError, match="not a rid"):
        shc.crl_document("kid-1", 1, [("has.dot", None)])
    with pytest.raises(ValueError, match="aware"):
        shc.crl_document("kid-1", 1, [("aaaaaaaaaaa", datetime(2025, 4, 1))])


def test_a_timestamped_crl_entry_revokes_only_cards_issued_before_it() -> None:
    crl = shc.crl_document("kid-1", 1, [("aaaaaaaaaaa", 1_700_000_000), ("bbbbbbbbbbb", None)])
    assert shc.rid_revoked(crl, rid="aaaaaaaaaaa", nbf=1_699_999_999)
    assert not shc.rid_revoked(crl, rid="aaaaaaaaaaa", nbf=1_700_000_000)
    assert shc.rid_revoked(crl, rid="bbbbbbbbbbb", nbf=2_000_000_000)
    assert not shc.rid_revoked(crl, rid="ccccccccccc", nbf=0)


# --- files and QR text -----------------------------------------------------------------------


def test_health_card_file_round_trips(card: str) -> None:
    raw = shc.health_card_file([card, card])
    assert json.loads(raw) == {"verifiableCredential": [card, card]}
    assert shc.read_health_card_file(raw) == [card, card]


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b'{"verifiableCredential": "x"}', b'{"verifiableCredential": [1]}', b"\xff"]
)
def test_a_malformed_health_card_file_is_refused(raw: bytes) -> None:
    with pytest.raises(shc.CardFormatError):
        shc.read_health_card_file(raw)


def test_qr_text_round_trips(card: str) -> None:
    text = shc.qr_payload(card)
    assert text.startswith("shc:/") and text[5:].isdigit()
    assert len(text) == 5 + 2 * len(card)
    assert shc.jws_from_qr(text) == card
    assert shc.jws_from_qr(f"  {text}\n") == card


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://example.org/5676", "starts with shc:/"),
        ("shc:/", "only the digits"),
        ("shc:/567", "even number"),
        ("shc:/56x6", "only the digits"),
        ("shc:/56٧6", "only the digits"),
        ("shc:/5678", "above 77"),
        ("shc:/1/2/5676", "chunked"),
        ("shc:/" + "56" * 1196, "at most 1195"),
        ("shc:/5656", "compact JWS"),
    ],
)
def test_jws_from_qr_is_strict(text: str, message: str) -> None:
    with pytest.raises(shc.CardFormatError, match=message):
        shc.jws_from_qr(text)


def test_qr_payload_refuses_a_card_too_long_for_one_qr() -> None:
    with pytest.raises(shc.CardFormatError, match="one QR code holds 1195"):
        shc.qr_payload("a" * 600 + "." + "b" * 600 + "." + "c" * 86)


# --- hostile cards ---------------------------------------------------------------------------


def forged(payload_bytes: bytes, header: dict[str, Any] | None = None) -> str:
    """A compact JWS with a given raw payload and a dummy signature: for format checks only."""
    header = header or {"alg": "ES256", "zip": "DEF", "kid": "k"}
    encoded_header = b64url(json.dumps(header).encode())
    return f"{encoded_header}.{b64url(payload_bytes)}.{b64url(bytes(64))}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not a jws", "compact JWS"),
        (forged(shc.deflate(b"{}"), {"alg": "none", "zip": "DEF", "kid": "k"}), "not allowed"),
        (forged(shc.deflate(b"{}"), {"alg": "ES256", "kid": "k"}), "zip"),
        (forged(shc.deflate(b"{}"), {"alg": "ES256", "zip": "DEF"}), "kid"),
        (forged(b"\x00\x01 not deflate"), "DEFLATE"),
        (forged(zlib.compress(b"{}")), "DEFLATE"),
        (forged(shc.deflate(b"\0" * 10_000_000)), "more than"),
        (forged(shc.deflate(b"{}") + b"junk"), "after its DEFLATE"),
        (forged(shc.deflate(b"{}")[:-1]), "truncated"),
        (forged(shc.deflate(b"not json")), "not UTF-8 JSON"),
        (forged(shc.deflate(b"[" * 100_000 + b"]" * 100_000)), "not UTF-8 JSON"),
        (forged(shc.deflate(b"[]")), "not a JSON object"),
        (forged(shc.deflate(b'{"iss":"x","nbf":1,"vc":{"type":["x"]}}')), "health-card"),
    ],
)
def test_decode_card_names_the_problem(token: str, message: str) -> None:
    with pytest.raises(shc.CardFormatError, match=message):
        shc.decode_card(token)


def test_a_card_of_another_kind_is_never_read_as_a_certificate() -> None:
    other = {
        "iss": "https://issuer.example",
        "nbf": 1,
        "vc": {
            "type": ["https://smarthealth.cards#health-card"],
            "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {"resourceType": "Bundle"}},
        },
    }
    assert shc.card_type(other) == "other"
    with pytest.raises(shc.CardFormatError, match="not an examination certificate"):
        shc.read_certificate(other)


def test_fresh_keys_make_cards_of_the_projected_length(card_arguments: Arguments) -> None:
    for _ in range(5):
        key = generate_key()
        kid = thumbprint(public_jwk(key))
        payload = shc.build_payload(**card_arguments())
        assert len(shc.encode_card(payload, key, kid)) == shc.projected_jws_length(payload)

"""Properties over generated input: tampered bundles and cards are refused without a 5xx, and
nothing an employer or the public can reach carries a result, a diagnosis or a test code.

Examples are derandomised and few (each costs full HTTP round trips on both databases), so a
run is reproducible and cheap; the mutations are chosen to reach every part of the document.
"""

from __future__ import annotations

import base64
import binascii
import copy
import html
import itertools
import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.certificates import shc
from registry.examinations.signing import signed_content
from registry.verification.verdict import RESULTS
from tests.bundles import body, examination_bundle, signed
from tests.certificates.builders import certified, holder_secret, load_rulesets, submit
from tests.certificates.test_card_content import DENIED, assert_nothing_clinical
from tests.support import World
from tests.verification.helpers import BIRTH_DATE, card_of, partner_key

pytestmark = (
    pytest.mark.postgres
)  # generated text (NUL bytes, long values) meets each database's text types

FHIR = "application/fhir+json"
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "final", "Patient/1", "urn:uuid:x", "2025-13-45", "ZZ", "10828004"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_NUMBERS = itertools.count(1)
_ADDRESSES = itertools.count(1)


def _from_anywhere() -> dict[str, str]:
    """A client address of its own, so the per-address verification allowance never applies."""
    n = next(_ADDRESSES)
    return {"REMOTE_ADDR": f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON document, the root excluded."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*path, key)
        yield from _paths(item, (*path, key))


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """The document with one location replaced, removed, duplicated or given a new member."""
    copied = copy.deepcopy(document)
    path = draw(st.sampled_from(sorted(_paths(copied), key=repr)))
    parent = _parent(copied, path)
    key = path[-1]
    action = draw(st.sampled_from(["replace", "remove", "duplicate", "add"]))
    if action == "replace":
        parent[key] = draw(JSON_VALUES)
    elif action == "remove":
        del parent[key]
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    elif action == "duplicate":
        parent[key + "_"] = copy.deepcopy(parent[key])
    elif isinstance(parent[key], dict):
        parent[key][draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
    elif isinstance(parent[key], list):
        parent[key].append(draw(JSON_VALUES))
    else:
        parent[key] = [parent[key], draw(JSON_VALUES)]
    return copied


def _covered(original: dict[str, Any], candidate: Any) -> bool:
    """Whether the original signature still covers the candidate's content."""
    try:
        return signed_content(candidate) == signed_content(original)
    except Exception:  # not a bundle any more: nothing of it is covered
        return False


# -- tampered bundles ------------------------------------------------------------------------
@pytest.fixture
def clinic_signed(world: World) -> tuple[dict[str, Any], dict[str, str]]:
    """A bundle signed with a clinic-held key (no custodial key to fall back on) and headers."""
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007", custody="clinic-held")
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    return signed(examination_bundle(number="TAMPER-1"), key, kid), headers


def test_a_tampered_bundle_is_never_a_5xx_and_never_accepted_unless_still_covered(
    world: World, clinic_signed: tuple[dict[str, Any], dict[str, str]]
) -> None:
    original, headers = clinic_signed
    accepted: list[int] = []

    @PROPERTY
    @given(candidate=mutated(original))
    def check(candidate: dict[str, Any]) -> None:
        response = world.http.post(
            "/api/v1/examinations", data=body(candidate), headers=headers, content_type=FHIR
        )
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        if _covered(original, candidate):
            return  # e.g. the signature's `when` or `who` changed: content still as signed
        assert response.status_code >= 400, (response.status_code, response.json)
        if response.status_code == 422:
            assert response.json["resourceType"] == "OperationOutcome"
            assert response.json["issue"]
        accepted.append(response.status_code)

    check()
    assert accepted, "no generated mutation changed the signed content"


def test_a_mutated_unsigned_bundle_is_never_a_5xx_and_is_signed_exactly_as_sent(
    world: World,
) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")  # custodial: the registry signs what it accepts
    headers = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    original = examination_bundle(number="CUSTODIAL-1")
    stored: list[str] = []

    @settings(PROPERTY, max_examples=30)
    @given(candidate=mutated(original))
    def check(candidate: dict[str, Any]) -> None:
        response = world.http.post(
            "/api/v1/examinations", data=body(candidate), headers=headers, content_type=FHIR
        )
        assert response.status_code < 500, response.get_data(as_text=True)[:500]
        if response.status_code >= 300:
            return
        read = world.http.get(f"/api/v1/examinations/{response.json['id']}", headers=headers)
        assert read.status_code == 200
        kept = json.loads(read.data)
        assert signed_content(kept) == signed_content(candidate)
        assert read.headers["ETag"] == f'"{response.json["bundle_sha256"]}"'
        stored.append(response.json["id"])

    check()
    assert stored, "no generated mutation was acceptable: the property says little"


@pytest.mark.parametrize("cut", [1, 100, 5000, -2])
def test_a_truncated_signed_bundle_is_refused_with_a_4xx(
    world: World, clinic_signed: tuple[dict[str, Any], dict[str, str]], cut: int
) -> None:
    original, headers = clinic_signed
    raw = body(original)
    response = world.http.post(
        "/api/v1/examinations", data=raw[:cut], headers=headers, content_type=FHIR
    )
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]


# -- tampered cards --------------------------------------------------------------------------
def _segments(token: str) -> tuple[bytes, ...] | None:
    """The decoded bytes of a compact JWS's three parts, or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return tuple(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)
    except (binascii.Error, ValueError):
        return None


def _recompressed(token: str, payload: dict[str, Any]) -> str:
    """The card with another payload and the original header and signature."""
    header, _payload, signature = token.split(".")
    compressor = zlib.compressobj(wbits=-15)
    raw = compressor.compress(json.dumps(payload).encode()) + compressor.flush()
    return f"{header}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{signature}"


@st.composite
def tampered_cards(draw: st.DrawFn, token: str) -> str:
    """A card with characters changed, its payload edited, or re-signed by another key."""
    how = draw(st.sampled_from(["characters", "payload", "resigned"]))
    if how == "characters":
        changes = draw(
            st.lists(
                st.tuples(
                    st.integers(0, len(token) - 1),
                    st.sampled_from(
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                    ),
                ),
                min_size=1,
                max_size=3,
            )
        )
        characters = list(token)
        for index, character in changes:
            characters[index] = character
        return "".join(characters)
    payload = shc.decode_card(token)[1]
    if how == "payload":
        return _recompressed(token, draw(mutated(payload)))
    key, kid = partner_key()
    return shc.encode_card(draw(mutated(payload)) if draw(st.booleans()) else payload, key, kid)


@pytest.fixture
def valid_card(world: World) -> str:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    return card_of(world, certified(submit(world, number="CARD-1"))["KZ"])


def test_a_tampered_card_is_never_a_5xx_and_never_valid(world: World, valid_card: str) -> None:
    original = _segments(valid_card)
    results: set[str] = set()

    @PROPERTY
    @given(candidate=tampered_cards(valid_card), as_qr=st.booleans())
    def check(candidate: str, as_qr: bool) -> None:
        presented: dict[str, str] = {"jws": candidate}
        fits = len(candidate) <= shc.MAX_SINGLE_QR_JWS
        if as_qr and fits and shc._JWS_CHARACTERS.fullmatch(candidate):
            presented = {"qr": shc.qr_payload(candidate)}
        response = world.http.post("/api/v1/verify", json=presented, environ_base=_from_anywhere())
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        answer = response.json
        assert answer["result"] in RESULTS
        if _segments(candidate) != original:
            assert answer["result"] != "valid", candidate
        results.add(answer["result"])

    check()
    assert {"invalid_signature", "untrusted_issuer"} & results, results


# -- nothing clinical on employer-facing and public surfaces --------------------------------
OUTCOMES = st.fixed_dictionaries(
    {},
    optional={
        "chest-xray": st.sampled_from(["normal", "abnormal-tb", "abnormal-other"]),
        "hiv-screening": st.sampled_from(["negative", "positive"]),
        "syphilis-nontreponemal": st.sampled_from(["negative", "positive"]),
        "tb-naa": st.sampled_from(["negative", "positive"]),
        "hbsag": st.sampled_from(["negative", "positive"]),
    },
)
_TAGS = re.compile(r"<[^>]+>")


def _words(text: str) -> set[str]:
    return set(re.split(r"[^A-Za-z0-9\-]+", text))


def _assert_no_code_in_text(where: str, text: str) -> None:
    """No test, result or diagnosis code (or concept key) appears as a word of the text."""
    leaked = _words(html.unescape(_TAGS.sub(" ", text))) & DENIED
    assert not leaked, (where, sorted(leaked))


def _receipt_payload(receipt: str) -> dict[str, Any]:
    payload = receipt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _public_answers(world: World, certificate: Any, employer: dict[str, str]) -> Iterator[Any]:
    """Every answer an employer or anyone without a role gets about this certificate."""
    card = card_of(world, certificate)
    presentations = [
        {"qr": shc.qr_payload(card)},
        {"jws": card},
        {"certificate_id": certificate.id, "birth_date": BIRTH_DATE},
    ]
    for presented in presentations:
        for headers in ({}, employer):
            answer = world.http.post(
                "/api/v1/verify", json=presented, headers=headers, environ_base=_from_anywhere()
            )
            assert answer.status_code == 200
            yield "verify " + next(iter(presented)), answer.json
            yield "receipt", _receipt_payload(answer.json["receipt"])
    page = world.http.post(
        "/verify",
        data={"certificate_id": certificate.id, "birth_date": BIRTH_DATE},
        environ_base=_from_anywhere(),
    )
    assert page.status_code == 200
    yield "verify page", page.get_data(as_text=True)
    holder = world.http.get(f"/h/{holder_secret(world, certificate)}")
    assert holder.status_code == 200
    yield "holder page", holder.get_data(as_text=True)
    yield "card", shc.decode_card(card)[1]
    for path in ("/api/v1/trust-list", "/.well-known/jwks.json", "/api/v1/clinics"):
        answer = world.http.get(path)
        assert answer.status_code == 200
        yield path, answer.get_data(as_text=True)


def test_no_employer_facing_or_public_answer_carries_a_result(world: World) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    employer = world.bearer("employer")
    surfaces: set[str] = set()

    @settings(PROPERTY, max_examples=8)
    @given(outcomes=OUTCOMES)
    def check(outcomes: dict[str, str]) -> None:
        bundle = examination_bundle(number=f"PUBLIC-{next(_NUMBERS)}", outcomes=outcomes)
        for certificate in certified(submit(world, bundle)).values():
            for where, answer in _public_answers(world, certificate, employer):
                surfaces.add(where)
                if isinstance(answer, str):
                    _assert_no_code_in_text(where, answer)
                else:
                    assert_nothing_clinical(answer)

    check()
    assert {"verify qr", "verify page", "holder page", "card", "receipt"} <= surfaces

"""POST /api/v1/verify: every answer reachable, a whitelisted body, a signed receipt, audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates import shc
from registry.certificates.holders import HOLDER
from registry.certificates.ids import new_certificate_id
from registry.crypto.keys import b64url, public_jwk
from registry.verification import service
from registry.verification.models import VerificationEvent
from registry.verification.verdict import RESULTS, Presented
from tests.certificates.builders import certified, submit
from tests.conftest import registry_app
from tests.support import BASE_URL, World
from tests.verification.helpers import (
    BIRTH_DATE,
    MEDICAL_WORDS,
    card_of,
    certificate,
    examination_card_payload,
    partner_key,
    publish,
    qr_of,
    revoke,
    scenarios,
    sign_card,
    suspend,
    tampered,
    verify,
)

TOP_LEVEL = {
    "result",
    "reason",
    "card_type",
    "certificate",
    "holder",
    "clinic",
    "issuer",
    "kid",
    "revocation_checked_at",
    "checked_at",
    "authority_view",
    "log_leaf",
    "receipt",
    "reason_code",
    "for_destination",
    "revoked_at",
}
REASON_CODES_SEEN = {
    "valid": None,
    "valid_for_other_destination": "other-destination",
    "expired": "expired",
    "not_yet_valid": "not-yet-valid",
    "revoked": "revoked-by-issuer",
    "superseded": "superseded",
    "invalid_signature": "signature",
    "untrusted_issuer": "issuer-unknown",
    "issuer_suspended": "clinic-suspended",
    "not_found": "not-found",
    "malformed": "unreadable",
}


@pytest.fixture
def published(world: World) -> World:
    publish(world)
    return world


def _document_key(world: World) -> Any:
    return world.ctx.keystore.active("document").public_key


# Random tokens (key thumbprints, the photo address) hold "hiv" now and then by chance.
_RANDOM_TOKENS = re.compile(r'"kid": "[^"]*"|/verify/photo/[A-Za-z0-9_-]+')


def _words(value: Any) -> str:
    return _RANDOM_TOKENS.sub("", json.dumps(value, ensure_ascii=False)).lower()


# -- every answer --------------------------------------------------------------------------
def test_every_result_code_is_reachable_through_the_api(world: World) -> None:
    inputs = scenarios(world)
    answers = {expected: verify(world, body) for expected, body in inputs.items()}
    assert {expected: a["result"] for expected, a in answers.items()} == {r: r for r in RESULTS}
    for expected, answer in answers.items():
        assert set(answer) == TOP_LEVEL
        if expected != "valid":
            assert answer["reason"], expected
    assert answers["issuer_suspended"]["clinic"]["accreditation"] == {
        "at_examination": "active",
        "now": "suspended",
    }
    assert answers["superseded"]["reason"] == "replaced by a newer certificate"
    assert {expected: a["reason_code"] for expected, a in answers.items()} == REASON_CODES_SEEN
    for ended in ("revoked", "superseded"):
        assert answers[ended]["revoked_at"] is not None, ended
    assert answers["valid"]["revoked_at"] is None
    other = answers["valid_for_other_destination"]
    assert other["for_destination"] == "RU"
    assert other["certificate"]["destination"] == "KZ"
    assert other["certificate"]["purpose"] == "pre-departure"
    assert other["reason"].startswith("valid for KZ (pre-departure), not for RU")
    # the person's identity is for the verdict "valid" only: no photo or document hint here
    assert other["holder"]["document_hint"] is None and other["holder"]["photo_url"] is None
    assert answers["not_found"]["certificate"] is None
    assert answers["not_found"]["holder"] is None


def test_a_valid_qr_answers_with_exactly_the_published_fields(published: World) -> None:
    issued = certificate(published)
    answer = verify(published, {"qr": qr_of(published, issued)})
    assert answer["result"] == "valid" and answer["reason"] is None
    assert answer["card_type"] == "examination-certificate"
    assert answer["certificate"] == {
        "id": issued.id,
        "purpose": "pre-departure",
        "destination": "KZ",
        "issued": issued.signed_at.replace(microsecond=0).isoformat(),
        "valid_from": issued.valid_from.isoformat(),
        "valid_until": issued.valid_until.isoformat(),
    }
    holder = answer["holder"]
    assert set(holder) == {"name", "birth_date", "document_hint", "photo_url"}
    assert holder["name"] == "Karimov Rustam Saidovich"
    assert holder["birth_date"] == BIRTH_DATE
    assert holder["document_hint"] == "•••• 4567"
    assert holder["photo_url"].startswith(f"{BASE_URL}/verify/photo/")
    assert answer["clinic"] == {
        "id": "TJ-DUS-0007",
        "name": "Clinic TJ-DUS-0007",
        "country": "TJ",
        "accreditation": {"at_examination": "active", "now": "active"},
    }
    assert answer["issuer"] == BASE_URL
    assert answer["kid"] == published.ctx.keystore.active("certificate").kid
    assert answer["revocation_checked_at"] == answer["checked_at"]
    assert answer["authority_view"] is None


def test_the_receipt_is_the_registry_signed_answer(published: World) -> None:
    issued = certificate(published)
    answer = verify(published, {"qr": qr_of(published, issued)})
    receipt = answer.pop("receipt")
    header = jwt.get_unverified_header(receipt)
    assert header["alg"] == "ES256"
    assert header["kid"] == published.ctx.keystore.active("document").kid
    signed = jwt.PyJWS().decode(receipt, _document_key(published), algorithms=["ES256"])
    assert json.loads(signed) == answer


def test_nothing_medical_reaches_a_verifier_of_an_hiv_positive_holder(published: World) -> None:
    # KZ does not bar entry on HIV, so this examination holds a KZ certificate.
    issued = certificate(published, outcomes={"hiv-screening": "positive"})
    for body in (
        {"qr": qr_of(published, issued)},
        {"certificate_id": issued.id, "birth_date": BIRTH_DATE},
    ):
        answer = verify(published, body)
        assert answer["result"] == "valid"
        receipt = json.loads(
            jwt.PyJWS().decode(answer.pop("receipt"), _document_key(published), ["ES256"])
        )
        for text in (_words(answer), _words(receipt)):
            assert not [word for word in MEDICAL_WORDS if word in text]


def test_an_unfit_examination_answers_no_certificate_never_unfit(published: World) -> None:
    submission = submit(published, number="UNFIT-1", outcomes={"drug-screening": "positive"})
    assert certified(submission) == {}
    answer = verify(
        published, {"certificate_id": new_certificate_id("KZ"), "birth_date": BIRTH_DATE}
    )
    assert answer["result"] == "not_found"
    assert "unfit" not in _words(answer) and "drug" not in _words(answer)


def test_qr_jws_and_number_answer_alike(published: World) -> None:
    issued = certificate(published)
    token = card_of(published, issued)
    by_qr = verify(published, {"qr": shc.qr_payload(token)})
    by_jws = verify(published, {"jws": token})
    by_number = verify(published, {"certificate_id": issued.id, "birth_date": BIRTH_DATE})
    for answer in (by_qr, by_jws, by_number):
        assert answer["result"] == "valid"
        assert answer["certificate"] == by_qr["certificate"]
        assert answer["clinic"] == by_qr["clinic"]
        assert answer["holder"]["name"] == by_qr["holder"]["name"]


def test_a_typed_number_with_lookalike_letters_and_spaces_is_found(published: World) -> None:
    issued = certificate(published)
    cyrillic = (
        issued.id.lower().replace("-", " ").translate(str.maketrans("acekmhtpx", "асекмнтрх"))
    )
    answer = verify(published, {"certificate_id": f"  {cyrillic} ", "birth_date": BIRTH_DATE})
    assert answer["result"] == "valid" and answer["certificate"]["id"] == issued.id


def test_a_wrong_birth_date_answers_like_an_unknown_number(published: World) -> None:
    issued = certificate(published)
    wrong = verify(published, {"certificate_id": issued.id, "birth_date": "1991-03-15"})
    unknown = verify(
        published, {"certificate_id": new_certificate_id("KZ"), "birth_date": BIRTH_DATE}
    )
    assert wrong["result"] == unknown["result"] == "not_found"
    assert wrong["reason"] == unknown["reason"]
    assert wrong["certificate"] is wrong["holder"] is wrong["clinic"] is None


def test_a_mistyped_number_is_malformed_and_says_why(published: World) -> None:
    issued = certificate(published)
    last = issued.id[-1]
    typo = issued.id[:-1] + ("2" if last != "2" else "3")
    answer = verify(published, {"certificate_id": typo, "birth_date": BIRTH_DATE})
    assert answer["result"] == "malformed"
    assert "typing error" in answer["reason"]


def test_a_card_of_a_compromised_registry_key_is_refused_while_its_certificate_lives(
    database_url: str, tmp_path: Path
) -> None:
    from registry.certificates.service import rotate_certificate_key
    from tests.support import OPERATOR

    # the rotation writes a new key: an app with a keys folder of its own
    with registry_app(database_url, tmp_path / "keys", key_refresh_seconds=0) as app:
        world = World(app)
        publish(world)
        issued = certificate(world)
        old_card = card_of(world, issued)
        with world.ctx.db.unit_of_work() as uow:
            rotation = rotate_certificate_key(
                uow,
                actor=OPERATOR,
                compromised_since=issued.issued_at - timedelta(minutes=1),
            )
            uow.commit()
        assert issued.id in [c.id for c in rotation.reissued]
        old = verify(world, {"jws": old_card})
        assert old["result"] == "invalid_signature"
        assert "was compromised" in old["reason"] and "ask the holder" in old["reason"]
        current = verify(world, {"certificate_id": issued.id, "birth_date": BIRTH_DATE})
        assert current["result"] == "valid" and current["kid"] == rotation.kid


def test_a_suspension_backdated_over_the_examination_stops_its_certificates(
    published: World,
) -> None:
    from registry.accreditation.service import change_clinic_status
    from tests.support import OPERATOR

    examined_on = datetime.now(UTC).date() - timedelta(days=3)
    issued = certificate(published, examined_on=examined_on)
    suspend(published, "TJ-DUS-0007", at=datetime.now(UTC) - timedelta(days=10))
    with published.ctx.db.unit_of_work() as uow:
        change_clinic_status(
            uow,
            principal=OPERATOR,
            clinic_id="TJ-DUS-0007",
            status="active",
            reason="reinstated after inspection",
        )
        uow.commit()
    answer = verify(published, {"qr": qr_of(published, issued)})
    assert answer["result"] == "issuer_suspended"
    assert answer["clinic"]["accreditation"] == {"at_examination": "suspended", "now": "active"}
    assert "on the examination date" in answer["reason"]


def test_dates_are_judged_as_of_the_check(published: World) -> None:
    issued = certificate(published)
    token = card_of(published, issued)
    ctx = published.ctx

    def at(moment: datetime) -> str:
        return service.verify(
            ctx.db,
            presented=Presented(jws=token),
            principal=HOLDER,
            channel="cli",
            now=moment,
        ).result

    start = datetime.combine(issued.valid_from, datetime.min.time(), UTC)
    end = datetime.combine(issued.valid_until, datetime.max.time(), UTC)
    assert at(issued.issued_at - timedelta(hours=1)) == "not_yet_valid"
    assert at(max(start, issued.issued_at) + timedelta(minutes=1)) == "valid"
    assert at(end - timedelta(minutes=1)) == "valid"
    assert at(end + timedelta(seconds=2)) == "expired"


# -- bad input -------------------------------------------------------------------------------
def _header(claims: dict[str, Any]) -> str:
    return b64url(json.dumps(claims, separators=(",", ":")).encode())


def _bad_cards(world: World, token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    kid = world.ctx.keystore.active("certificate").kid
    registry_key = world.ctx.keystore.active("certificate").private_key
    signing_input = f"{header}.{payload}".encode()
    der = registry_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    # key confusion: an HMAC keyed with the registry's public key, which anyone can fetch
    public_secret = json.dumps(public_jwk(registry_key)).encode()
    hs256_header = _header({"alg": "HS256", "zip": "DEF", "kid": kid})
    hs256 = hmac.new(public_secret, f"{hs256_header}.{payload}".encode(), hashlib.sha256)
    stranger, _ = partner_key()
    claims = examination_card_payload(BASE_URL)
    unknown_kid = sign_card(claims, stranger)
    return {
        "alg none": f"{_header({'alg': 'none', 'zip': 'DEF', 'kid': kid})}.{payload}.",
        "alg none with a signature": (
            f"{_header({'alg': 'none', 'zip': 'DEF', 'kid': kid})}.{payload}.{signature}"
        ),
        "HS256 keyed with the public key": f"{hs256_header}.{payload}.{b64url(hs256.digest())}",
        "DER-encoded signature": f"{header}.{payload}.{b64url(der)}",
        "a kid no issuer has": unknown_kid,
        "a payload that does not inflate": f"{header}.{b64url(b'not deflate data')}.{signature}",
        "a changed signature": tampered(token),
        "two parts": f"{header}.{payload}",
        "a header that is not JSON": f"{b64url(b'{nope')}.{payload}.{signature}",
        "1 MB of garbage": "x" * (1024 * 1024),
    }


def _bad_qrs(token: str) -> dict[str, str]:
    qr = shc.qr_payload(token)
    return {
        "truncated QR digits": qr[:-10],
        "an odd digit count": qr[:-1],
        "non-digits": qr[:20] + "ab" + qr[22:],
        "a digit pair above 77": "shc:/" + "99" * 40,
        "a chunked QR": "shc:/1/2/" + qr[5:],
        "another QR altogether": "https://example.org/",
        "1 MB of garbage": "shc:/" + "1" * (1024 * 1024 - 5),
    }


def test_every_bad_card_or_qr_is_answered_with_a_reason_never_a_500(published: World) -> None:
    issued = certificate(published)
    token = card_of(published, issued)
    answers = {}
    for name, bad in _bad_cards(published, token).items():
        answers[f"jws: {name}"] = verify(published, {"jws": bad})
    for name, bad in _bad_qrs(token).items():
        answers[f"qr: {name}"] = verify(published, {"qr": bad})
    for name, answer in answers.items():
        assert answer["result"] in ("malformed", "invalid_signature"), name
        assert answer["reason"], name
        assert answer["certificate"] is answer["holder"] is None, name
    assert answers["jws: alg none with a signature"]["result"] == "invalid_signature"
    assert "'none' is not accepted" in answers["jws: alg none with a signature"]["reason"]
    assert "'HS256' is not accepted" in answers["jws: HS256 keyed with the public key"]["reason"]
    assert "DER" in answers["jws: DER-encoded signature"]["reason"]
    assert answers["jws: a kid no issuer has"]["result"] == "invalid_signature"
    assert "has no key" in answers["jws: a kid no issuer has"]["reason"]
    assert "DEFLATE" in answers["jws: a payload that does not inflate"]["reason"]
    assert answers["jws: a changed signature"]["result"] == "invalid_signature"
    assert "even number" in answers["qr: an odd digit count"]["reason"]
    assert "only the digits" in answers["qr: non-digits"]["reason"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x00\xff" * (512 * 1024), "application/octet-stream"),
        (b"not json at all", "application/json"),
        (b"", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"qr": 12}', "application/json"),
        (b'{"qr": "shc:/00", "jws": "a.b.c"}', "application/json"),
        (b'{"certificate_id": "KZ-7F3K-9QP4"}', "application/json"),
        (b'{"birth_date": "1991-03-14"}', "application/json"),
        (b'{"certificate_id": "KZ-7F3K-9QP4", "birth_date": "14.03.1991"}', "application/json"),
        (b"[" * 100 + b"]" * 100, "application/json"),
    ],
)
def test_a_request_that_is_not_a_verification_is_answered_malformed(
    world: World, body: bytes, content_type: str
) -> None:
    response = world.http.post("/api/v1/verify", data=body, content_type=content_type)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.json["result"] == "malformed"
    assert response.json["reason"]


def test_random_text_in_any_field_never_breaks_verification(published: World) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fields = st.sampled_from(["qr", "jws", "certificate_id"])
    texts = st.one_of(
        st.text(max_size=300),
        st.text(alphabet="0123456789", max_size=300).map(lambda digits: "shc:/" + digits),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.",
            max_size=300,
        ),
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(field=fields, text=texts)
    def check(field: str, text: str) -> None:
        body = {field: text}
        if field == "certificate_id":
            body["birth_date"] = BIRTH_DATE
        if "\x00" in text:  # refused at the edge like every text holding NUL
            response = published.http.post("/api/v1/verify", json=body)
            assert response.status_code == 400, response.get_data(as_text=True)
            assert "NUL character" in response.json["message"]
            return
        answer = verify(published, body)
        assert answer["result"] in RESULTS

    check()


# -- who verified, audited, rate-limited -----------------------------------------------------
def _log(world: World) -> list[VerificationEvent]:
    with world.ctx.db.read_session() as session:
        return list(session.scalars(select(VerificationEvent).order_by(VerificationEvent.id)))


def _audit(world: World, action: str) -> list[AuditEvent]:
    with world.ctx.db.read_session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def test_an_employer_token_names_the_employer_in_the_holder_log(published: World) -> None:
    issued = certificate(published)
    body = {"qr": qr_of(published, issued)}
    verify(published, body)
    verify(published, body, headers=published.bearer("employer"))
    log = _log(published)
    assert [(e.certificate_id, e.verifier_name, e.verifier_role, e.channel) for e in log] == [
        (issued.id, None, None, "api"),
        (issued.id, "employer test client", "employer", "api"),
    ]
    assert [e.result for e in log] == ["valid", "valid"]


def test_an_authority_of_the_destination_gets_the_link_to_its_view(published: World) -> None:
    issued = certificate(published)
    body = {"qr": qr_of(published, issued)}
    own = verify(published, body, headers=published.bearer("authority", country="KZ"))
    other = verify(published, body, headers=published.bearer("authority", country="RU"))
    employer = verify(published, body, headers=published.bearer("employer"))
    assert own["authority_view"] == (
        f"{BASE_URL}/api/v1/authority/examinations/{issued.examination_id}"
    )
    assert other["authority_view"] is None and employer["authority_view"] is None


def test_every_verification_is_audited_without_personal_data(published: World) -> None:
    issued = certificate(published)
    verify(published, {"qr": qr_of(published, issued)}, headers=published.bearer("employer"))
    verify(published, {"certificate_id": issued.id, "birth_date": "1990-01-01"})
    verify(published, {"qr": "shc:/12"})
    events = _audit(published, "certificate.verify")
    assert [(e.outcome, e.detail["result"], e.detail["form"]) for e in events] == [
        ("success", "valid", "qr"),
        ("failure", "not_found", "certificate_id"),
        ("failure", "malformed", "qr"),
    ]
    assert events[0].object_id == issued.id and events[0].role == "employer"
    assert events[1].object_id is None and events[1].actor == "anonymous"
    text = _words([e.detail for e in events])
    for personal in ("karimov", "rustam", "1991", "1990-01-01", "4567"):
        assert personal not in text


def test_the_photo_address_works_briefly_and_only_as_issued(published: World) -> None:
    issued = certificate(published)
    answer = verify(published, {"qr": qr_of(published, issued)})
    path = answer["holder"]["photo_url"].removeprefix(BASE_URL)
    response = published.http.get(path)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.data.startswith(b"\x89PNG")
    token = path.rsplit("/", 1)[1]
    forged = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    assert published.http.get(f"/verify/photo/{forged}").status_code == 404
    ctx = published.ctx
    with pytest.raises(Exception, match="expired"):
        service.photo(
            ctx.db,
            token=token,
            cipher=ctx.cipher,
            principal=HOLDER,
            now=datetime.now(UTC) + service.PHOTO_LIFETIME + timedelta(seconds=5),
        )
    assert len(_audit(published, "certificate.verify.photo")) == 1


def test_an_invalid_answer_carries_no_photo_or_document_hint(published: World) -> None:
    issued = certificate(published)
    revoke(published, issued.id)
    answer = verify(published, {"qr": qr_of(published, issued)})
    assert answer["result"] == "revoked"
    assert answer["holder"] == {
        "name": "Karimov Rustam Saidovich",
        "birth_date": BIRTH_DATE,
        "document_hint": None,
        "photo_url": None,
    }


@pytest.fixture
def limited_app(database_url: str, keys_dir: Path) -> Iterator[Flask]:
    with registry_app(database_url, keys_dir, verify_rate_limit="3 per minute") as app:
        yield app


def test_verification_is_rate_limited_per_client_address(limited_app: Flask) -> None:
    client = limited_app.test_client()
    body = {"qr": "shc:/12"}
    here = {"REMOTE_ADDR": "192.0.2.10"}
    for _ in range(3):
        assert client.post("/api/v1/verify", json=body, environ_base=here).status_code == 200
    refused = client.post("/api/v1/verify", json=body, environ_base=here)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json["error"] == "too_many_requests"
    assert refused.json["status"] == 429
    # the employer page shares the address's allowance
    page = client.post("/verify", data={"qr": "shc:/12"}, environ_base=here)
    assert page.status_code == 429
    elsewhere = {"REMOTE_ADDR": "192.0.2.11"}
    assert client.post("/api/v1/verify", json=body, environ_base=elsewhere).status_code == 200

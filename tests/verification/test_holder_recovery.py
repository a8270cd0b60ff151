"""The holder who lost the slip, the holder page's log, the reasons a certificate ended, the
country a verifier checks for, and receipts read back: the server half of the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.certificates.holder_page import holder_page
from registry.certificates.holders import holder_secret, recovery_code
from registry.certificates.revocation import KEY_COMPROMISE, RULESET_CHANGED
from registry.transparency.reasons import REVOCATION_CODES, revocation_code
from registry.verification import receipts
from tests.certificates.builders import amend, withdraw
from tests.support import World
from tests.verification.helpers import BIRTH_DATE, certificate, publish, qr_of, revoke, verify

AMENDED, ENTERED_IN_ERROR, REVOKED_BY_ISSUER = "superseded", "entered-in-error", "revoked-by-issuer"


@pytest.fixture
def published(world: World) -> World:
    publish(world)
    return world


def _recover(world: World, number: str, born: str, code: str):  # type: ignore[no-untyped-def]
    return world.http.post(
        "/h",
        data={"certificate_id": number, "birth_date": born, "recovery_code": code, "lang": "en"},
    )


def test_the_right_details_reopen_the_holder_page(published: World) -> None:
    issued = certificate(published, number="R-OK")
    code = recovery_code(published.ctx.keystore, examination_id=issued.examination_id)
    # typed as people type: lower case, spaces for hyphens
    answer = _recover(published, issued.id.lower().replace("-", " "), BIRTH_DATE, code.lower())
    assert answer.status_code == 303
    secret = holder_secret(published.ctx.keystore, examination_id=issued.examination_id)
    assert answer.headers["Location"] == f"/h/{secret}?lang=en"
    assert published.http.get(answer.headers["Location"]).status_code == 200


def test_every_wrong_detail_gets_the_same_answer_and_is_audited(published: World) -> None:
    issued = certificate(published, number="R-WRONG")
    code = recovery_code(published.ctx.keystore, examination_id=issued.examination_id)
    other = certificate(published, number="R-OTHER")  # the same person, another examination
    other_code = recovery_code(published.ctx.keystore, examination_id=other.examination_id)
    assert other_code != code
    wrong = {
        "unknown number": ("KZ-2222-2222", BIRTH_DATE, code),
        "mistyped number": (
            issued.id[:-1] + ("3" if issued.id[-1] != "3" else "4"),
            BIRTH_DATE,
            code,
        ),
        "another birth date": (issued.id, "1990-01-01", code),
        "not a date": (issued.id, "yesterday", code),
        "another holder's code": (issued.id, BIRTH_DATE, other_code),
        "a code of the wrong shape": (issued.id, BIRTH_DATE, "12"),
    }
    bodies = set()
    for why, (number, born, typed) in wrong.items():
        answer = _recover(published, number, born, typed)
        assert answer.status_code == 404, why
        assert "/h/" not in answer.get_data(as_text=True), why
        bodies.add(answer.get_data(as_text=True))
    assert len(bodies) == 1
    assert "These details do not open a holder page." in bodies.pop()
    assert _recover(published, issued.id, BIRTH_DATE, code).status_code == 303
    with published.ctx.db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "holder.recover")
        ).all()
    assert [e.outcome for e in events].count("failure") == len(wrong)
    succeeded = [e for e in events if e.outcome == "success"]
    assert [(e.object_type, e.object_id) for e in succeeded] == [("Certificate", issued.id)]


def test_the_holder_log_is_paged_ten_at_a_time_newest_first(published: World) -> None:
    issued = certificate(published, number="R-LOG")
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for minute in range(23):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            verify(published, {"qr": qr_of(published, issued)})
    secret = holder_secret(published.ctx.keystore, examination_id=issued.examination_id)
    with published.ctx.db.unit_of_work() as uow:
        first = holder_page(uow, secret=secret)
        last = holder_page(uow, secret=secret, log_page=3)
        beyond = holder_page(uow, secret=secret, log_page=9)
    assert (first.log_total, first.log_pages, len(first.verifications)) == (23, 3, 10)
    assert first.verifications[0].verified_at == start + timedelta(minutes=22)
    assert (last.log_page, len(last.verifications)) == (3, 3)
    assert last.verifications[-1].verified_at == start
    assert beyond.log_page == 3
    page = published.http.get(f"/h/{secret}?lang=en&page=2").get_data(as_text=True)
    assert 'rel="prev"' in page and 'rel="next"' in page and "Page 2 of 3" in page
    assert published.http.get(f"/h/{secret}?page=zero").status_code == 400


def test_each_way_a_certificate_ends_has_its_code_and_translated_words(published: World) -> None:
    codes = {AMENDED, ENTERED_IN_ERROR, REVOKED_BY_ISSUER, KEY_COMPROMISE, RULESET_CHANGED}
    assert codes == set(REVOCATION_CODES)
    assert revocation_code("valid", None) is None
    assert revocation_code("superseded", "superseded by an amended examination") == AMENDED
    assert revocation_code("revoked", "examination entered in error") == ENTERED_IN_ERROR
    assert revocation_code("revoked", f"{KEY_COMPROMISE}: the key was stolen") == KEY_COMPROMISE
    assert revocation_code("revoked", KEY_COMPROMISE) == KEY_COMPROMISE
    assert revocation_code("revoked", f"{RULESET_CHANGED}: KZ version 2 (hiv)") == RULESET_CHANGED
    assert revocation_code("revoked", "issued to the wrong person") == REVOKED_BY_ISSUER
    withdrawn = certificate(published, number="R-WITHDRAWN")
    withdraw(published, withdrawn.examination_id)
    amended = certificate(published, number="R-AMENDED")
    from tests.bundles import examination_bundle

    amend(
        published,
        amended.examination_id,
        examination_bundle(number="R-AMENDED", outcomes={"hbsag": "positive"}),
    )
    revoked = certificate(published, number="R-REVOKED")
    revoke(published, revoked.id)
    answers = {
        name: verify(published, {"qr": qr_of(published, issued)})
        for name, issued in (("withdrawn", withdrawn), ("amended", amended), ("revoked", revoked))
    }
    assert {name: (a["result"], a["reason_code"]) for name, a in answers.items()} == {
        "withdrawn": ("revoked", ENTERED_IN_ERROR),
        "amended": ("superseded", AMENDED),
        "revoked": ("revoked", REVOKED_BY_ISSUER),
    }
    assert all(a["revoked_at"] for a in answers.values())
    # the holder reads why and what to do, in their language (Tajik by citizenship)
    secret = holder_secret(published.ctx.keystore, examination_id=withdrawn.examination_id)
    page = published.http.get(f"/h/{secret}").get_data(as_text=True)
    assert "Клиника сабти муоинаро бозхонд кард." in page
    assert "Бекор шуда аз" in page


def test_the_country_checked_for_is_a_two_letter_code(published: World) -> None:
    issued = certificate(published, number="R-DEST")
    qr = qr_of(published, issued)
    assert verify(published, {"qr": qr, "for_destination": "kz"})["result"] == "valid"
    assert verify(published, {"qr": qr, "for_destination": ""})["result"] == "valid"
    other = verify(published, {"qr": qr, "for_destination": "TM"})
    assert other["result"] == "valid_for_other_destination" and other["for_destination"] == "TM"
    bad = published.http.post("/api/v1/verify", json={"qr": qr, "for_destination": "Russia"})
    assert bad.status_code == 400
    assert "ISO 3166-1 alpha-2" in bad.json["message"]


def test_a_mistyped_number_says_one_character_is_wrong(published: World) -> None:
    issued = certificate(published, number="R-TYPO")
    last = issued.id[-1]
    typo = issued.id[:-1] + ("3" if last != "3" else "4")
    answer = verify(published, {"certificate_id": typo, "birth_date": BIRTH_DATE})
    assert (answer["result"], answer["reason_code"]) == ("malformed", "number-check")
    page = published.http.post(
        "/verify", data={"certificate_id": typo, "birth_date": BIRTH_DATE, "lang": "ru"}
    ).get_data(as_text=True)
    assert "Один знак номера введён неверно." in page
    assert "Проверьте номер сертификата" in page and "Не удалось прочитать код" not in page


def test_a_receipt_is_read_back_from_its_text_or_its_saved_page(published: World) -> None:
    issued = certificate(published, number="R-RECEIPT")
    answer = verify(published, {"qr": qr_of(published, issued)})
    keystore = published.ctx.keystore
    check = receipts.check_receipt(answer["receipt"], keystore=keystore)
    assert check.genuine and check.statement["certificate"]["id"] == issued.id
    assert check.statement["result"] == "valid"
    saved = published.http.post(
        "/verify/receipt", data={"receipt": answer["receipt"], "download": "1", "lang": "en"}
    )
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"] == (
        f'attachment; filename="verification-receipt-{issued.id}.html"'
    )
    page = saved.get_data(as_text=True)
    assert answer["receipt"] in page and issued.id in page and "Genuine receipt" in page
    again = receipts.check_receipt(page, keystore=keystore)
    assert again.genuine and again.token == answer["receipt"]
    header, payload, signature = answer["receipt"].split(".")
    forged = f"{header}.{payload[:-4]}AAAA.{signature}"
    assert not receipts.check_receipt(forged, keystore=keystore).genuine
    shown = published.http.post("/verify/receipt", data={"receipt": forged, "lang": "en"})
    assert shown.status_code == 200 and "Not a genuine receipt" in shown.get_data(as_text=True)
    assert not receipts.check_receipt("hello", keystore=keystore).genuine
    empty = published.http.post("/verify/receipt", data={"receipt": " ", "lang": "en"})
    assert empty.status_code == 400

"""The fewest queries per request: the statements a submission and a verification send.

The figures are exact, so a change that adds a query per request (a lazy load, a second read
of the same row, an audit flush) shows up here before it shows up in BENCHMARKS.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from registry.certificates.models import Certificate, CertificateRevocation
from tests.bundles import body, examination_bundle
from tests.certificates.builders import certified, submit
from tests.statements import Statements, recorded
from tests.support import World
from tests.verification.helpers import BIRTH_DATE, publish_and_hold_keys, qr_of

pytestmark = pytest.mark.postgres  # statement counts differ by database (one write statement)

FHIR = "application/fhir+json"


@pytest.fixture
def published(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    return publish_and_hold_keys(world, monkeypatch)


@pytest.fixture
def issued(published: World) -> Certificate:
    return certified(submit(published, number="STATEMENTS-1"))["KZ"]


def _verify(world: World, answer: dict[str, Any]) -> tuple[Statements, dict[str, Any]]:
    with recorded(world.ctx.db.engine) as statements:
        response = world.http.post("/api/v1/verify", json=answer)
    assert response.status_code == 200
    return statements, response.json


def _written(world: World, *, holder_log: bool = True) -> dict[str, int]:
    """The writes of one verification: on PostgreSQL one statement (data-modifying CTEs)."""
    if world.ctx.db.dialect == "postgresql":
        return {"WITH verification_events" if holder_log else "WITH audit_row": 1}
    written = {"INSERT audit_events": 1, "INSERT log_entries": 1}
    return {**written, "INSERT verification_events": 1} if holder_log else written


def _round_trips(world: World, statements: Statements) -> None:
    """On PostgreSQL every statement commits by itself: no BEGIN, no COMMIT, no ROLLBACK."""
    if world.ctx.db.dialect == "postgresql":
        assert all(statements.autocommitted), statements
        assert statements.control() == []
    else:
        assert statements.control() == ["BEGIN", "BEGIN IMMEDIATE"]


@pytest.mark.committed
def test_verifying_a_qr_reads_the_certificate_once_and_writes_the_log_and_audit_event(
    published: World, issued: Certificate
) -> None:
    statements, answer = _verify(published, {"qr": qr_of(published, issued)})
    assert answer["result"] == "valid"
    # one read: certificate, examination date, person, clinic history and the card's revocation;
    # one write: the audit event, its leaf and the holder's log entry (PostgreSQL: 2 round trips)
    assert statements.tally() == {"SELECT certificates": 1, **_written(published)}
    _round_trips(published, statements)


@pytest.mark.committed
def test_verifying_a_certificate_number_reads_as_little_as_a_qr(
    published: World, issued: Certificate
) -> None:
    statements, answer = _verify(published, {"certificate_id": issued.id, "birth_date": BIRTH_DATE})
    assert answer["result"] == "valid"
    # the read answers whether any card of the certificate was ever replaced: none was, so its
    # current card needs no check of its own
    assert statements.tally() == {"SELECT certificates": 1, **_written(published)}
    _round_trips(published, statements)


@pytest.mark.committed
def test_a_certificate_number_whose_older_card_was_replaced_checks_its_current_card(
    published: World, issued: Certificate
) -> None:
    with published.ctx.db.unit_of_work() as uow:
        uow.session.add(
            CertificateRevocation(
                certificate_id=issued.id,
                kid="an-older-key",
                rid="older-card",
                revoked_at=datetime.now(UTC),
                reason="card re-issued",
                actor="registry",
            )
        )
        uow.commit()
    statements, answer = _verify(published, {"certificate_id": issued.id, "birth_date": BIRTH_DATE})
    assert answer["result"] == "valid"  # the older card was replaced, not the current one
    assert statements.tally() == {
        "SELECT certificates": 1,
        "SELECT certificate_revocations": 1,
        **_written(published),
    }
    _round_trips(published, statements)


@pytest.mark.committed
def test_a_malformed_verification_reads_nothing_and_is_audited(published: World) -> None:
    statements, answer = _verify(published, {"qr": "shc:/12"})
    assert answer["result"] == "malformed"
    assert statements.tally() == _written(published, holder_log=False)


@pytest.mark.committed
def test_a_submission_with_three_certificates_writes_each_table_once(published: World) -> None:
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    # an earlier submission of another person: rulesets parsed, connections open
    warm_up = examination_bundle(number="STATEMENTS-0", passport="AA0000001")
    response = published.http.post(
        "/api/v1/examinations", data=body(warm_up), headers=headers, content_type=FHIR
    )
    assert response.status_code == 201
    bundle = examination_bundle(number="STATEMENTS-2")
    with recorded(published.ctx.db.engine) as statements:
        response = published.http.post(
            "/api/v1/examinations", data=body(bundle), headers=headers, content_type=FHIR
        )
    assert response.status_code == 201, response.json
    destinations = [a["destination"] for a in response.json["assessments"] if a["certificate_id"]]
    assert sorted(destinations) == ["KZ", "RU", "TM"]
    assert statements.tally() == {
        "SELECT clients": 1,  # the bearer's client is still active
        "SELECT clinics": 1,  # with its status history and keys, joined
        "SELECT examinations": 1,  # the same examination number already stored?
        # the person by blind index with its holders (who else holds its documents)
        "SELECT person_documents": 1,
        "INSERT persons": 1,
        "INSERT person_documents": 1,
        # a new person: its name variants and birth date, and the registered persons sharing
        # them (the warm-up's person has the same name and birth date: proposed, not merged)
        "INSERT person_name_keys": 1,
        "SELECT person_name_keys": 1,
        "INSERT proposed_matches": 1,
        "INSERT examinations": 1,  # ON CONFLICT DO NOTHING: a concurrent twin is not an error
        "INSERT examination_versions": 1,
        "INSERT test_results": 1,
        "SELECT rulesets": 1,
        "INSERT certificates": 1,  # ON CONFLICT DO NOTHING: an id drawn twice is drawn again
        "INSERT certificate_cards": 1,
        # the surveillance counts, kept in the same transaction
        "INSERT surveillance_counts": 1,
        # written together once the stored version's subscribers are done: its tally, the
        # audit events (examination.create, the three certificate.issue) and their leaves
        # with the three certificates' public leaves
        "INSERT surveillance_tallies": 1,
        "INSERT audit_events": 1,
        "INSERT log_entries": 1,
    }
    # no savepoints: conflicts are answered by ON CONFLICT, not by rolling back to one
    assert not [s for s in statements.control() if s.startswith("SAVEPOINT")]


@pytest.mark.committed
def test_a_person_examined_again_unchanged_is_read_once_and_not_written(
    published: World,
) -> None:
    headers = published.bearer("clinic", clinic_id="TJ-DUS-0007")
    for number in ("STATEMENTS-3", "STATEMENTS-4"):
        bundle = examination_bundle(number=number)
        with recorded(published.ctx.db.engine) as statements:
            response = published.http.post(
                "/api/v1/examinations", data=body(bundle), headers=headers, content_type=FHIR
            )
        assert response.status_code == 201, response.json
    tally = statements.tally()
    # the second examination of the same person: found with its documents in one statement,
    # identity, name keys and documents as stored, so nothing of the person is written
    assert tally["SELECT person_documents"] == 1
    assert not {
        verb for verb in tally if verb.split()[1].startswith(("person", "proposed_matches"))
    } - {"SELECT person_documents"}
    assert sum(tally.values()) == 14

"""PostgreSQL going away in the middle of a run: 503 with Retry-After and a clear body, and once
it is back nothing half-written is found and every refused submission succeeds when retried.

The app reaches the server through a loopback proxy; cutting the proxy (listener and every open
connection) is, for the app, the server stopping. The shared server itself is never touched.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from registry.audit import service as audit
from registry.audit.models import AuditEvent
from registry.certificates import service as certificates
from registry.certificates.models import Certificate, CertificateCard
from registry.crypto.notes import Signer
from registry.db import UnitOfWork
from registry.examinations import persons, service
from registry.examinations.models import Examination, ExaminationVersion, Person, TestResult
from registry.surveillance import service as surveillance
from registry.surveillance.models import SurveillanceCount, SurveillanceTally
from registry.transparency.verify import verify_log
from tests.bundles import body, examination_bundle
from tests.conftest import registry_app
from tests.reliability.tcpproxy import TcpProxy, proxied
from tests.support import World

FHIR = "application/fhir+json"
DEADLINE = 60.0


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with proxied((url.host or "127.0.0.1", url.port or 5432)) as running:
        yield running


@pytest.fixture
def app(postgres_url: str, proxy: TcpProxy, keys_dir: Path) -> Iterator[Flask]:
    """An app of its own on the test database, reached through the proxy; its writes commit."""
    url = make_url(postgres_url).set(port=proxy.port).render_as_string(hide_password=False)
    with registry_app(url, keys_dir) as app:
        yield app


@pytest.fixture
def direct(postgres_url: str) -> Iterator[Engine]:
    """The same database without the proxy: what is really stored."""
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clinic(world: World) -> dict[str, str]:
    from tests.certificates.builders import load_rulesets

    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    return world.bearer("clinic", clinic_id="TJ-DUS-0007")


def _submit(world: World, headers: dict[str, str], number: str) -> Any:
    client = world.app.test_client()
    raw = body(examination_bundle(number=number))
    return client.post("/api/v1/examinations", data=raw, headers=headers, content_type=FHIR)


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert response.headers["Retry-After"] == "5"
    assert response.json["error"] == "database_unavailable"
    assert "nothing was stored" in response.json["message"]
    assert response.json["request_id"] == response.headers["X-Request-ID"]


def _stored(direct: Engine) -> dict[str, tuple[int, ...]]:
    """For every examination (by the clinic's number): how much of it exists."""
    with Session(direct) as session:
        shapes = {}
        for examination in session.scalars(select(Examination)):
            version_ids = [v.id for v in examination.versions]
            certificate_ids = list(
                session.scalars(
                    select(Certificate.id).where(Certificate.examination_id == examination.id)
                )
            )
            counts = (
                len(version_ids),
                session.scalar(select(func.count()).where(TestResult.version_id.in_(version_ids))),
                len(certificate_ids),
                session.scalar(
                    select(func.count()).where(CertificateCard.certificate_id.in_(certificate_ids))
                ),
                session.scalar(
                    select(func.count()).where(
                        AuditEvent.object_id.in_([examination.id, *certificate_ids])
                    )
                ),
            )
            shapes[examination.identifier_value] = tuple(int(c or 0) for c in counts)
        return shapes


def _totals(direct: Engine) -> dict[str, int]:
    with Session(direct) as session:
        totals = {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (
                Examination,
                ExaminationVersion,
                TestResult,
                Person,
                Certificate,
                CertificateCard,
                AuditEvent,
                SurveillanceTally,
            )
        }
        examined = session.scalar(select(func.sum(SurveillanceCount.examined)))
        return {**totals, "counted as examined": int(examined or 0)}


def _chain_holds(direct: Engine) -> None:
    # every audit event that committed has its leaf and every leaf its event: nothing half-written
    with Session(direct) as session:
        report = verify_log(session, log_key=Signer.from_seed("unused/log", bytes(32)).verifier)
    assert report.ok, report.problems
    assert report.checked["audit events"] > 0


def _cut_after(proxy: TcpProxy, original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        proxy.cut()
        return result

    return wrapper


def _cut_before(proxy: TcpProxy, original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        proxy.cut()
        return original(*args, **kwargs)

    return wrapper


STEPS = {
    "after the person is matched": (persons, "match_or_create", _cut_after),
    "after the version is stored": (service, "_new_version", _cut_after),
    "after the surveillance counts": (surveillance, "count", _cut_after),
    "after the audit event": (audit, "record", _cut_after),
    "after the certificates are issued": (certificates, "issue_for_version", _cut_after),
    "just before the commit": (UnitOfWork, "commit", _cut_before),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_the_database_lost_mid_submission_is_a_503_and_leaves_nothing(
    world: World,
    clinic: dict[str, str],
    proxy: TcpProxy,
    direct: Engine,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    assert _submit(world, clinic, "BEFORE-1").status_code == 201
    before = _totals(direct)
    owner, name, cut = STEPS[step]
    monkeypatch.setattr(owner, name, cut(proxy, getattr(owner, name)))

    _assert_unavailable(_submit(world, clinic, "DURING-1"))
    monkeypatch.undo()
    _assert_unavailable(_submit(world, clinic, "DURING-2"))  # still down: a new connection fails
    ready = world.http.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"

    proxy.start()
    assert _totals(direct) == before
    assert set(_stored(direct)) == {"BEFORE-1"}
    retried = _submit(world, clinic, "DURING-1")
    assert retried.status_code == 201, retried.get_data(as_text=True)[:500]
    shapes = _stored(direct)
    assert shapes["DURING-1"] == shapes["BEFORE-1"]
    _chain_holds(direct)


def test_other_requests_during_the_outage_are_503_too(
    world: World, clinic: dict[str, str], proxy: TcpProxy
) -> None:
    accepted = _submit(world, clinic, "BEFORE-1")
    assert accepted.status_code == 201
    examination_id = accepted.json["id"]
    stored = world.http.get(f"/api/v1/examinations/{examination_id}", headers=clinic)
    assert stored.status_code == 200
    proxy.cut()
    _assert_unavailable(world.http.get(f"/api/v1/examinations/{examination_id}", headers=clinic))
    _assert_unavailable(
        world.http.post(
            "/api/v1/verify", json={"certificate_id": "KZ-7F3K-9QPX", "birth_date": "1991-03-14"}
        )
    )
    _assert_unavailable(world.http.get("/api/v1/clinics"))
    proxy.start()
    again = world.http.get(f"/api/v1/examinations/{examination_id}", headers=clinic)
    assert again.status_code == 200 and again.data == stored.data


def test_an_outage_under_load_loses_nothing_accepted_and_half_writes_nothing(
    world: World, clinic: dict[str, str], proxy: TcpProxy, direct: Engine
) -> None:
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    numbers = iter(range(1, 100_000))

    def load() -> None:
        while not stop.is_set():
            with lock:
                number = f"LOAD-{next(numbers)}"
            response = _submit(world, clinic, number)
            if response.status_code == 503:
                _assert_unavailable(response)
            with lock:
                answers.append((number, response.status_code))

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s: {answers}"
            time.sleep(0.01)

    def count(status: int) -> int:
        with lock:
            return sum(1 for _number, s in answers if s == status)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: count(201) >= 4, "accepted submissions")
        proxy.cut()
        cut_at = len(answers)
        wait_for(lambda: count(503) >= 4, "503 answers while the database is away")
        proxy.start()
        wait_for(lambda: any(s == 201 for _n, s in answers[cut_at:][-4:]), "recovery")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=DEADLINE)

    statuses = Counter(status for _number, status in answers)
    assert set(statuses) == {201, 503}, statuses
    shapes = _stored(direct)
    accepted = {number for number, status in answers if status == 201}
    refused = {number for number, status in answers if status == 503}
    assert accepted <= set(shapes)
    # a 503 may still have committed (the answer to COMMIT lost on the way back): retrying
    # such a submission finds it (200); any other 503 stored nothing and retrying creates it
    for number in sorted(refused):
        retried = _submit(world, clinic, number)
        assert retried.status_code == (200 if number in shapes else 201), number
    shapes = _stored(direct)
    assert set(shapes) == accepted | refused
    assert len(set(shapes.values())) == 1, shapes  # every examination whole, none half-written
    totals = _totals(direct)
    assert totals["counted as examined"] == totals["examinations"] == len(shapes)
    assert totals["surveillance_tallies"] == totals["examination_versions"]
    _chain_holds(direct)

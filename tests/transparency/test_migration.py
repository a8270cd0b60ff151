"""Migration 0007: existing audit events become the first leaves of the log, in their order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.audit.service import audit_leaf
from registry.crypto.notes import Signer
from registry.db import Database
from registry.schema import upgrade
from registry.transparency import sequencer
from registry.transparency.models import LogEntry
from registry.transparency.verify import verify_log


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite3'}"
    url: str = request.getfixturevalue("fresh_database")
    return url


def test_existing_audit_events_become_the_first_leaves_in_order(old_database: str) -> None:
    upgrade(old_database, "0006")
    engine = create_engine(old_database)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO audit_events (at, actor, role, jurisdiction, action, object_type,"
                    " object_id, purpose_of_use, outcome, detail, prev_hash, hash) VALUES (:at,"
                    " 'client-1', 'clinic', 'TJ', :action, 'Examination', :object, NULL,"
                    " 'success', :detail, :prev, :hash)"
                ),
                {
                    "at": (start + timedelta(minutes=n)).replace(tzinfo=None)
                    if engine.dialect.name == "sqlite"
                    else start + timedelta(minutes=n),
                    "action": f"examination.read.{n}",
                    "object": f"EX-{n}",
                    "detail": f'{{"n": {n}}}',
                    "prev": f"{n:064x}",
                    "hash": f"{n + 1:064x}",
                },
            )
    engine.dispose()

    upgrade(old_database, "head")

    db = Database(old_database)
    signer = Signer.from_seed("registry.test/log", bytes(32))
    assert sequencer.integrate_all(db, signer).size == 3
    with Session(db.engine) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        leaves = session.scalars(select(LogEntry).order_by(LogEntry.seq)).all()
        assert [e.action for e in events] == [f"examination.read.{n}" for n in range(3)]
        assert [bytes(leaf.leaf_hash) for leaf in leaves] == [audit_leaf(e).hash for e in events]
        assert [bytes(leaf.leaf_hash) for leaf in leaves] == [bytes(e.leaf_hash) for e in events]
        assert len({e.salt for e in events}) == 3
        report = verify_log(session, log_key=signer.verifier)
    assert report.ok, report.problems
    assert report.checked["audit events"] == 3
    columns = {c["name"] for c in inspect(db.engine).get_columns("audit_events")}
    assert "prev_hash" not in columns and "hash" not in columns
    db.engine.dispose()

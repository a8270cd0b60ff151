"""The audit chain records state changes and catches a changed, deleted or reordered row."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from registry.audit.models import AuditEvent
from registry.audit.service import GENESIS, as_fhir, record, verify_chain
from tests.support import OPERATOR, World

pytestmark = pytest.mark.postgres  # the chain head is taken under a PostgreSQL advisory lock


def _three_events(world: World) -> list[int]:
    with world.ctx.db.unit_of_work() as uow:
        ids = [
            record(
                uow.session,
                actor=OPERATOR,
                action=f"test.{n}",
                object_type="Thing",
                object_id=str(n),
            ).id
            for n in range(3)
        ]
        uow.commit()
    return ids


def test_each_event_links_to_the_one_before(world: World) -> None:
    _three_events(world)
    with world.ctx.db.read_session() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert events[0].prev_hash == GENESIS
        assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
        assert verify_chain(session).ok
        assert verify_chain(session).checked == len(events) >= 3


@pytest.mark.committed
def test_changed_row_is_reported_at_its_id(world: World) -> None:
    ids = _three_events(world)
    with world.ctx.db.engine.begin() as connection:
        connection.execute(
            update(AuditEvent).where(AuditEvent.id == ids[1]).values(outcome="failure")
        )
    with world.ctx.db.read_session() as session:
        report = verify_chain(session)
    assert not report.ok
    assert report.broken_at == ids[1]
    assert report.reason == "content does not match its hash"


@pytest.mark.committed
def test_deleted_row_breaks_the_next_link(world: World) -> None:
    ids = _three_events(world)
    with world.ctx.db.engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.id == ids[1]))
    with world.ctx.db.read_session() as session:
        report = verify_chain(session)
    assert (report.ok, report.broken_at) == (False, ids[2])


@pytest.mark.committed
def test_cli_audit_verify_exits_nonzero_on_tampering(world: World, runner, monkeypatch) -> None:
    ids = _three_events(world)
    settings = world.ctx.settings
    monkeypatch.setenv("REGISTRY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(settings.keys_dir))
    from registry.cli import main

    with world.ctx.db.read_session() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    ok = runner.invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert f"audit chain intact: {total} events verified" in ok.output
    with world.ctx.db.engine.begin() as connection:
        connection.execute(
            update(AuditEvent).where(AuditEvent.id == ids[0]).values(actor="someone-else")
        )
    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at event {ids[0]}" in broken.output


def test_state_changes_are_audited_in_the_same_transaction(world: World) -> None:
    with world.ctx.db.read_session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    world.clinic("TJ-DUS-0007")
    with world.ctx.db.read_session() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[before:] == ["clinic.create", "key.create"]


def test_event_exports_as_fhir_audit_event(world: World) -> None:
    _three_events(world)
    with world.ctx.db.read_session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "test.0")).one()
        resource = as_fhir(event, base_url="http://registry.test")
    assert resource["resourceType"] == "AuditEvent"
    assert resource["agent"][0]["who"]["identifier"]["value"] == OPERATOR.client_id
    assert resource["entity"][0]["what"]["identifier"] == {"system": "Thing", "value": "0"}

"""Audit events are committed to the transparency log; the CLI catches a changed or deleted row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from registry.audit.models import AuditEvent
from registry.audit.service import as_fhir, audit_leaf, record
from registry.transparency.models import LogEntry
from tests.support import OPERATOR, World

pytestmark = pytest.mark.postgres


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


def test_each_event_has_a_leaf_that_commits_to_its_content(world: World) -> None:
    ids = _three_events(world)
    with world.ctx.db.read_session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.id.in_(ids))).all()
        leaves = {bytes(h) for h in session.scalars(select(LogEntry.leaf_hash))}
    assert all(audit_leaf(e).hash == bytes(e.leaf_hash) in leaves for e in events)
    assert len({e.salt for e in events}) == 3  # a fresh salt each: nothing to guess against


def _cli(world: World, runner: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    settings = world.ctx.settings
    monkeypatch.setenv("REGISTRY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("REGISTRY_BASE_URL", settings.base_url)
    from registry.cli import main

    return runner.invoke(main, list(args))


@pytest.mark.committed
def test_cli_log_and_audit_verify_name_a_changed_and_a_deleted_row(
    world: World, runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _three_events(world)
    assert _cli(world, runner, monkeypatch, "log", "sequence", "--once").exit_code == 0
    ok = _cli(world, runner, monkeypatch, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    with world.ctx.db.read_session() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent))
    assert f"{total} audit events" in ok.output
    with world.ctx.db.engine.begin() as connection:
        connection.execute(
            update(AuditEvent).where(AuditEvent.id == ids[0]).values(actor="someone-else")
        )
        connection.execute(delete(AuditEvent).where(AuditEvent.id == ids[1]))
    broken = _cli(world, runner, monkeypatch, "log", "verify")
    assert broken.exit_code == 1
    assert f"audit event {ids[0]} (test.0) does not match any leaf" in broken.output
    assert "commits to an audit event that is gone (deleted)" in broken.output


def test_state_changes_are_audited_in_the_same_transaction(world: World) -> None:
    with world.ctx.db.read_session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    world.clinic("TJ-DUS-0007")
    with world.ctx.db.read_session() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        kinds = session.scalars(select(LogEntry.kind).order_by(LogEntry.id)).all()
    assert actions[before:] == ["clinic.create", "key.create"]
    assert {"clinic.status", "clinic.key"} <= set(kinds)  # accreditation and key are public


def test_event_exports_as_fhir_audit_event_with_its_leaf(world: World) -> None:
    _three_events(world)
    with world.ctx.db.read_session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "test.0")).one()
        resource = as_fhir(event, base_url="http://registry.test")
    assert resource["resourceType"] == "AuditEvent"
    assert resource["agent"][0]["who"]["identifier"]["value"] == OPERATOR.client_id
    assert resource["entity"][0]["what"]["identifier"] == {"system": "Thing", "value": "0"}
    assert resource["extension"][0]["valueString"] == bytes(event.leaf_hash).hex()

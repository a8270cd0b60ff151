"""A pooled connection the server ended is replaced: the verification answers, written once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool

from registry.audit.models import AuditEvent
from registry.verification.models import VerificationEvent
from tests.support import World
from tests.verification.helpers import certificate, publish_and_hold_keys, qr_of


@pytest.mark.postgres
@pytest.mark.committed
def test_a_verification_on_a_connection_the_server_ended_answers_and_is_logged_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = world.ctx
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no server to end a connection: nothing to replace")
    backends: set[int] = set()
    connects: list[int] = []

    def checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        backends.add(dbapi_connection.info.backend_pid)

    event.listen(ctx.db.engine, "checkout", checked_out)
    event.listen(ctx.db.engine, "connect", lambda *_: connects.append(1))
    try:
        publish_and_hold_keys(world, monkeypatch)
        body = {"qr": qr_of(world, certificate(world, number="LOST-1"))}
        assert world.http.post("/api/v1/verify", json=body).json["result"] == "valid"
        # the server ends every connection this app holds (a restart, a failover, a timeout)
        admin = create_engine(
            ctx.settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1),
            poolclass=NullPool,
        )
        with admin.connect() as connection:
            for pid in backends:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        connects.clear()
        answer = world.http.post("/api/v1/verify", json=body)
    finally:
        event.remove(ctx.db.engine, "checkout", checked_out)
    assert answer.status_code == 200, answer.json
    assert answer.json["result"] == "valid"
    assert connects  # a fresh connection, not an error
    with ctx.db.read_session() as session:
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "certificate.verify")
        )
        logged = session.scalar(select(func.count()).select_from(VerificationEvent))
    assert (audited, logged) == (2, 2)  # each verification written exactly once

"""The audit log read as FHIR AuditEvents: search (date, action, agent, entity) and read by id.

Reads only: events are written by ``registry.audit``; this turns them into resources with its
``as_fhir`` and records each read there. An admin sees every event, an accreditor its
country's; an event of another country answers exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from registry.audit import service as audit
from registry.audit.models import AuditEvent
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.errors import NotFound


@dataclass(frozen=True)
class AuditSearch:
    """FHIR search parameters of AuditEvent, parsed: the export's query and who/what it names."""

    query: audit.EventQuery
    # any of these actors (agent: the client id), any of these objects (entity: an id, or
    # Type/id); empty: any
    agents: tuple[str, ...] = field(default=())
    entities: tuple[tuple[str | None, str], ...] = field(default=())


def _jurisdiction(principal: Principal) -> str | None:
    authorize(principal, "audit.read")
    return None if principal.role == "admin" else principal.country


def search(
    session: Session, *, principal: Principal, search: AuditSearch, base_url: str
) -> audit.EventPage:
    """One page of matching events as FHIR AuditEvents, in id order; the read is audited."""
    jurisdiction = _jurisdiction(principal)
    query = search.query
    count = max(1, min(query.count, audit.MAX_EXPORT_PAGE))
    statement = select(AuditEvent).where(AuditEvent.id > query.after_id)
    if jurisdiction is not None:
        statement = statement.where(AuditEvent.jurisdiction == jurisdiction)
    if query.since is not None:
        statement = statement.where(AuditEvent.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEvent.at < query.until)
    if query.action is not None:
        statement = statement.where(AuditEvent.action == query.action)
    if search.agents:
        statement = statement.where(AuditEvent.actor.in_(search.agents))
    if search.entities:
        statement = statement.where(
            or_(
                *(
                    AuditEvent.object_id == object_id
                    if object_type is None
                    else and_(
                        AuditEvent.object_id == object_id, AuditEvent.object_type == object_type
                    )
                    for object_type, object_id in search.entities
                )
            )
        )
    events = list(session.scalars(statement.order_by(AuditEvent.id).limit(count)))
    page = audit.EventPage(
        resources=[audit.as_fhir(event, base_url=base_url) for event in events],
        next_after=events[-1].id if events and len(events) == count else None,
    )
    audit.record(
        session,
        actor=principal,
        action="audit.read",
        object_type="AuditEvent",
        detail={
            "events": len(events),
            "action": query.action,
            "agents": list(search.agents),
            "entities": [f"{t}/{i}" if t else i for t, i in search.entities],
        },
    )
    return page


def read(session: Session, *, principal: Principal, event_id: str, base_url: str) -> dict[str, Any]:
    """One event as a FHIR AuditEvent; 404 when unknown or of another country. Audited."""
    jurisdiction = _jurisdiction(principal)
    unknown = NotFound(f"no AuditEvent {event_id[:40]!r}")
    if not event_id.isdigit() or len(event_id) > 18:
        raise unknown
    event = session.get(AuditEvent, int(event_id))
    if event is None or (jurisdiction is not None and event.jurisdiction != jurisdiction):
        raise unknown
    resource = audit.as_fhir(event, base_url=base_url)
    audit.record(
        session,
        actor=principal,
        action="audit.read",
        object_type="AuditEvent",
        object_id=str(event.id),
        detail={"events": 1},
    )
    return resource

"""Append to the audit chain, verify it end to end, export events as FHIR AuditEvent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, insert, select, text
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.db import UnitOfWork, utcnow
from registry.events import VersionRetired, VersionStored

GENESIS = "0" * 64
_CHAIN_LOCK = 0x52454749  # advisory lock id: appends to the chain queue on PostgreSQL


class Actor(Protocol):
    """Who acts: a principal of the auth package, or a command-line operator."""

    @property
    def actor_id(self) -> str: ...
    @property
    def role(self) -> str | None: ...
    @property
    def jurisdiction(self) -> str | None: ...


@dataclass(frozen=True)
class SystemActor:
    """The registry itself or an operator at the command line."""

    actor_id: str = "registry"
    role: str | None = "admin"
    jurisdiction: str | None = None


def _content(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "role": event.role,
        "jurisdiction": event.jurisdiction,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "purpose_of_use": event.purpose_of_use,
        "outcome": event.outcome,
        "detail": event.detail or {},
        "prev_hash": event.prev_hash,
    }


def event_hash(event: AuditEvent) -> str:
    """The hash a row must carry: SHA-256 over its canonical content, previous hash included."""
    return sha256_hex(canonical_json(_content(event)))


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str = "success",
    purpose_of_use: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append an event to the chain in the caller's transaction (no personal data in detail).

    The row is written with one plain INSERT, without flushing the session's other objects,
    and the chain's head is read once per transaction: after the first append the transaction
    holds the chain (the advisory lock on PostgreSQL, the write lock on SQLite), so the head
    is the hash it wrote last. The returned event is not attached to the session.
    """
    connection = session.connection()
    current = session.get_nested_transaction() or session.get_transaction()
    event = AuditEvent(
        at=at or utcnow(),
        actor=actor.actor_id,
        role=actor.role,
        jurisdiction=actor.jurisdiction,
        action=action,
        object_type=object_type,
        object_id=object_id,
        purpose_of_use=purpose_of_use,
        outcome=outcome,
        detail=detail or {},
        prev_hash=_head(session, connection, current),
    )
    event.hash = event_hash(event)
    row = {column: getattr(event, column) for column in _COLUMNS}
    event.id = connection.execute(_INSERT, row).scalar_one()
    # keyed by the innermost transaction: a savepoint rolled back, or a new transaction,
    # never sees a head it did not write
    session.info[_HEAD_KEY] = (current, event.hash)
    return event


@dataclass(frozen=True)
class Entry:
    """One event of a batch appended together (see ``record_all``)."""

    action: str
    object_type: str | None = None
    object_id: str | None = None
    detail: dict[str, Any] | None = None
    outcome: str = "success"


def record_all(
    session: Session, *, actor: Actor, entries: Sequence[Entry], at: datetime | None = None
) -> None:
    """Append several events by one actor in order, in one INSERT (as ``record`` would each)."""
    if not entries:
        return
    connection = session.connection()
    current = session.get_nested_transaction() or session.get_transaction()
    head = _head(session, connection, current)
    when = at or utcnow()
    rows = []
    for entry in entries:
        event = AuditEvent(
            at=when,
            actor=actor.actor_id,
            role=actor.role,
            jurisdiction=actor.jurisdiction,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            purpose_of_use=None,
            outcome=entry.outcome,
            detail=entry.detail or {},
            prev_hash=head,
        )
        head = event.hash = event_hash(event)
        rows.append({column: getattr(event, column) for column in _COLUMNS})
    connection.execute(insert(_TABLE), rows)
    session.info[_HEAD_KEY] = (current, head)


_HEAD_KEY = "registry.audit.head"
_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
_COLUMNS = [c.name for c in _TABLE.columns if c.name != "id"]
_INSERT = insert(_TABLE).returning(_TABLE.c.id)
_HEAD = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_LOCK = text("SELECT pg_advisory_xact_lock(:lock)")


def _head(session: Session, connection: Connection, current: object) -> str:
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and cached[0] is current:
        head: str = cached[1]
        return head
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK, {"lock": _CHAIN_LOCK})
    return connection.execute(_HEAD).scalar_one_or_none() or GENESIS


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain."""

    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str | None = None


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Walk every event in order; report the first row whose content or link does not hold."""
    expected_prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, checked=checked)
        for event in rows:
            if event.prev_hash != expected_prev:
                return ChainReport(
                    False,
                    checked,
                    event.id,
                    "does not link to the row before it (a row was "
                    "deleted, inserted out of order or changed)",
                )
            if event_hash(event) != event.hash:
                return ChainReport(False, checked, event.id, "content does not match its hash")
            expected_prev = event.hash
            checked += 1
            last_id = event.id
        session.expunge_all()


def as_fhir(event: AuditEvent, *, base_url: str) -> dict[str, Any]:
    """The event as a FHIR R4 AuditEvent resource."""
    action_code = {"read": "R", "verify": "E", "create": "C", "update": "U", "delete": "D"}
    verb = event.action.rsplit(".", 1)[-1]
    outcome = {"success": "0", "failure": "4", "denied": "4"}.get(event.outcome, "8")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"system": f"{base_url}/audit-action", "code": event.action}],
        "action": action_code.get(verb, "E"),
        "recorded": event.at.isoformat(),
        "outcome": outcome,
        "agent": [
            {
                "who": {"identifier": {"system": f"{base_url}/client", "value": event.actor}},
                "requestor": True,
                "role": [{"text": event.role or "anonymous"}],
            }
        ],
        "source": {"observer": {"display": base_url}},
        "extension": [
            {"url": f"{base_url}/fhir/StructureDefinition/audit-hash", "valueString": event.hash}
        ],
    }
    if event.purpose_of_use:
        resource["agent"][0]["purposeOfUse"] = [{"text": event.purpose_of_use}]
    if event.object_type:
        resource["entity"] = [
            {"what": {"identifier": {"system": event.object_type, "value": event.object_id}}}
        ]
    return resource


# -- export ----------------------------------------------------------------------------------
MAX_EXPORT_PAGE = 1000


@dataclass(frozen=True)
class EventQuery:
    """Which audit events to export: a time window, one action, and a page after an id."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    action: str | None = None
    after_id: int = 0
    count: int = 100


def search_events(
    session: Session, *, query: EventQuery, jurisdiction: str | None = None
) -> list[AuditEvent]:
    """Events in id order matching the query (only ``jurisdiction``'s when one is given)."""
    statement = select(AuditEvent).where(AuditEvent.id > query.after_id)
    if jurisdiction is not None:
        statement = statement.where(AuditEvent.jurisdiction == jurisdiction)
    if query.since is not None:
        statement = statement.where(AuditEvent.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEvent.at < query.until)
    if query.action is not None:
        statement = statement.where(AuditEvent.action == query.action)
    count = max(1, min(query.count, MAX_EXPORT_PAGE))
    return list(session.scalars(statement.order_by(AuditEvent.id).limit(count)))


@dataclass(frozen=True)
class EventPage:
    """One page of exported events as FHIR AuditEvents, and the id to continue after."""

    resources: list[dict[str, Any]]
    next_after: int | None


def export_events(
    session: Session, *, principal: Principal, query: EventQuery, base_url: str
) -> EventPage:
    """Audit events as FHIR AuditEvents for an admin (all) or an accreditor (its country's).

    The export is itself audited, after the page is read.
    """
    authorize(principal, "audit.read")
    jurisdiction = None if principal.role == "admin" else principal.country
    events = search_events(session, query=query, jurisdiction=jurisdiction)
    full = len(events) == max(1, min(query.count, MAX_EXPORT_PAGE))
    page = EventPage(
        resources=[as_fhir(event, base_url=base_url) for event in events],
        next_after=events[-1].id if events and full else None,
    )
    record(
        session,
        actor=principal,
        action="audit.read",
        object_type="AuditEvent",
        detail={"events": len(events), "action": query.action},
    )
    return page


# -- subscriptions (registry/subscriptions.py) ------------------------------------------------
def on_version_stored(uow: UnitOfWork, event: VersionStored) -> None:
    """An examination created, or amended to a new version."""
    version = event.version
    if event.replaces is None:
        action = "examination.create"
        detail = {
            "version": version.version,
            "purpose": version.purpose,
            "custodial": version.custodial,
        }
    else:
        action = "examination.update"
        detail = {"version": version.version, "replaces": event.replaces.version}
    record(
        uow.session,
        actor=event.actor,
        action=action,
        object_type="Examination",
        object_id=event.examination.id,
        detail=detail,
    )


def on_version_retired(uow: UnitOfWork, event: VersionRetired) -> None:
    """An examination withdrawn (an amendment is audited with its new version)."""
    if event.withdrawn:
        record(
            uow.session,
            actor=event.actor,
            action="examination.withdraw",
            object_type="Examination",
            object_id=event.examination.id,
            detail={"version": event.version.version},
        )

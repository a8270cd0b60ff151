"""Record audit events, each committed to the transparency log; export them as FHIR AuditEvent.

An event is one row here (the content, kept for accreditors and admins) and one leaf in the
log: ``{"type": "audit", "commitment": SHA-256 of the row's canonical content with a random
salt}``. Both are plain INSERTs in the caller's transaction, with no lock shared between
requests; the sequencer orders them once committed. ``registry log verify`` recomputes every
commitment, so a row deleted, added or rewritten after the fact does not match its leaf.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.db import UnitOfWork, stage_rows, utcnow
from registry.events import VersionRetired, VersionStored
from registry.transparency import log

AUDIT_LEAF = "audit"


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
        "salt": event.salt,
    }


def commitment(event: AuditEvent) -> str:
    """What the event's public leaf holds: SHA-256 of its canonical content, salt included."""
    return sha256_hex(canonical_json(_content(event)))


def audit_leaf(event: AuditEvent) -> log.Leaf:
    """The public leaf of an event: its commitment and nothing else."""
    return log.leaf(AUDIT_LEAF, {"commitment": commitment(event)})


def _event(
    actor: Actor,
    *,
    action: str,
    object_type: str | None,
    object_id: str | None,
    outcome: str,
    purpose_of_use: str | None,
    detail: dict[str, Any] | None,
    at: datetime,
) -> tuple[AuditEvent, log.Leaf]:
    event = AuditEvent(
        at=at.astimezone(UTC),  # as it reads back, so the commitment can be recomputed
        actor=actor.actor_id,
        role=actor.role,
        jurisdiction=actor.jurisdiction,
        action=action,
        object_type=object_type,
        object_id=object_id,
        purpose_of_use=purpose_of_use,
        outcome=outcome,
        detail=detail or {},
        salt=os.urandom(16).hex(),
    )
    leaf = audit_leaf(event)
    event.leaf_hash = leaf.hash
    return event, leaf


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
    """Record an event and its leaf in the caller's transaction (no personal data in detail).

    Two plain INSERTs, without flushing the session's other objects and without a lock; the
    returned event is not attached to the session and carries its ``leaf_hash``.
    """
    when = at or utcnow()
    event, leaf = _event(
        actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        purpose_of_use=purpose_of_use,
        detail=detail,
        at=when,
    )
    _insert(session, event, leaf, at=when)
    return event


def _insert(session: Session, event: AuditEvent, leaf: log.Leaf, *, at: datetime) -> None:
    """The event's row and its leaf: two plain INSERTs in the caller's transaction (staged with
    the other rows of an event being handled, when the event is done; then it has no id yet)."""
    row = {column: getattr(event, column) for column in _COLUMNS}
    if not stage_rows(session, _TABLE, [row]):
        event.id = session.connection().execute(_INSERT, row).scalar_one()
    log.append(session, [leaf], at=at)


def record_with(
    session: Session | Connection,
    *,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
    at: datetime,
    also: tuple[Table, dict[str, Any]] | None = None,
) -> AuditEvent:
    """Record an event and its leaf, and ``also`` a row of another table, all or nothing.

    On PostgreSQL it is one statement (the rows as data-modifying CTEs): one round trip, and
    atomic by itself, so it may run on a connection that commits every statement (given the
    connection rather than a session). Elsewhere it is the two INSERTs of ``record`` and a
    third, in the caller's session's transaction.
    """
    event, leaf = _event(
        actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        purpose_of_use=None,
        detail=detail,
        at=at,
    )
    connection = session if isinstance(session, Connection) else session.connection()
    if connection.dialect.name != "postgresql":
        if not isinstance(session, Session):
            raise TypeError("outside PostgreSQL an event is recorded in a session's transaction")
        _insert(session, event, leaf, at=at)
        if also is not None:
            connection.execute(insert(also[0]), also[1])
        return event
    values = {f"a_{column}": getattr(event, column) for column in _COLUMNS}
    values.update({f"l_{column}": value for column, value in log.row(leaf, at=at).items()})
    if also is not None:
        values.update({f"x_{column}": value for column, value in also[1].items()})
    statement = _together(
        also[0] if also is not None else None, tuple(sorted(also[1])) if also else ()
    )
    connection.execute(statement, values)
    return event


@functools.lru_cache(maxsize=16)
def _together(table: Table | None, columns: tuple[str, ...]) -> Any:
    """The one statement of ``record_with``, built once per shape, every value a parameter."""
    audit_row = (
        insert(_TABLE)
        .values(
            {column: bindparam(f"a_{column}", type_=_TABLE.c[column].type) for column in _COLUMNS}
        )
        .returning(_TABLE.c.id)
        .cte("audit_row")
    )
    log_columns = [c.name for c in log.TABLE.columns if c.name != "id"]
    log_row = (
        insert(log.TABLE)
        .values({c: bindparam(f"l_{c}", type_=log.TABLE.c[c].type) for c in log_columns})
        .returning(log.TABLE.c.id)
        .cte("log_row")
    )
    if table is None:
        return select(audit_row.c.id).add_cte(log_row, nest_here=True)
    return (
        insert(table)
        .values({c: bindparam(f"x_{c}", type_=table.c[c].type) for c in columns})
        .add_cte(audit_row, log_row, nest_here=True)
    )


@dataclass(frozen=True)
class Entry:
    """One event of a batch recorded together (see ``record_all``)."""

    action: str
    object_type: str | None = None
    object_id: str | None = None
    detail: dict[str, Any] | None = None
    outcome: str = "success"


def record_all(
    session: Session, *, actor: Actor, entries: Sequence[Entry], at: datetime | None = None
) -> None:
    """Record several events by one actor in order, in one INSERT each for rows and leaves."""
    if not entries:
        return
    when = at or utcnow()
    made = [
        _event(
            actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            outcome=entry.outcome,
            purpose_of_use=None,
            detail=entry.detail,
            at=when,
        )
        for entry in entries
    ]
    rows = [{column: getattr(event, column) for column in _COLUMNS} for event, _ in made]
    if not stage_rows(session, _TABLE, rows):
        session.connection().execute(insert(_TABLE), rows)
    log.append(session, [leaf for _, leaf in made], at=when)


_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
_COLUMNS = [c.name for c in _TABLE.columns if c.name != "id"]
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


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
            {
                "url": f"{base_url}/fhir/StructureDefinition/log-leaf-hash",
                "valueString": event.leaf_hash.hex(),
            }
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
            "bundle_sha256": version.bundle_sha256,
        }
    else:
        action = "examination.update"
        detail = {
            "version": version.version,
            "replaces": event.replaces.version,
            "bundle_sha256": version.bundle_sha256,
        }
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

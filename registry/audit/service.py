"""Append to the audit chain, verify it end to end, export events as FHIR AuditEvent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.db import utcnow

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
    """Append an event to the chain in the caller's transaction (no personal data in detail)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _CHAIN_LOCK})
    head = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
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
        prev_hash=head or GENESIS,
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


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

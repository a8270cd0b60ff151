"""Recording and rotating the registry's own keys: the table, the key files and the events.

Every change of a registry key's status (a key recorded or made active, retired, or marked
compromised) is a row change of ``registry_keys`` and a ``RegistryKeyChanged`` event on the
same unit of work, so whoever records key history (the transparency log) sees each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from registry.audit.service import Actor, record
from registry.crypto.keys import public_jwk
from registry.crypto.keystore import KEY_PURPOSES, PURPOSES, RegistryKey
from registry.crypto.models import RegistryKeyRecord
from registry.db import UnitOfWork, utcnow
from registry.errors import BadRequest
from registry.events import RegistryKeyChanged


@dataclass(frozen=True)
class KeyRotation:
    """A new active key and the keys it replaced, now ``retired`` or ``compromised``."""

    key: RegistryKey
    replaced: list[str]
    replaced_status: str


def _row(key: RegistryKey, status: str, now: datetime) -> RegistryKeyRecord:
    return RegistryKeyRecord(
        kid=key.kid,
        purpose=key.purpose,
        status=status,
        created_at=key.created_at,
        compromised_since=key.compromised_since if status == "compromised" else None,
        public_jwk={**public_jwk(key.public_key), "kid": key.kid},
        changed_at=now,
    )


def _changed(uow: UnitOfWork, row: RegistryKeyRecord, now: datetime) -> None:
    since = row.compromised_since if row.status == "compromised" else None
    uow.publish(RegistryKeyChanged(row.kid, row.purpose, row.status, since or now))


def record_key_files(
    uow: UnitOfWork, *, actor: Actor, now: datetime | None = None
) -> list[RegistryKeyRecord]:
    """Record every key file of the folder that the database does not know (``registry init``).

    A file is recorded with the status it was written with, except that a purpose keeps the
    active key the database already has: a file never overrides the database.
    """
    now = now or utcnow()
    session = uow.session
    known = set(session.scalars(select(RegistryKeyRecord.kid)))
    unknown = [k for k in uow.keystore.key_files() if k.kid not in known]
    recorded: list[RegistryKeyRecord] = []
    for purpose in PURPOSES:
        files = [k for k in unknown if k.purpose == purpose]
        if not files:
            continue
        has_active = session.scalars(
            select(RegistryKeyRecord.kid).where(
                RegistryKeyRecord.purpose == purpose, RegistryKeyRecord.status == "active"
            )
        ).first()
        actives = [k for k in files if k.status == "active"]
        newest = None if has_active or not actives else max(actives, key=lambda k: k.created_at)
        for key in files:
            status = key.status
            if status == "active" and key is not newest:
                status = "retired"
            row = _row(key, status, now)
            session.add(row)
            recorded.append(row)
    session.flush()
    for row in recorded:
        _changed(uow, row, now)
        record(
            session,
            actor=actor,
            action="key.record",
            object_type="RegistryKey",
            object_id=row.kid,
            detail={"purpose": row.purpose, "status": row.status},
            at=now,
        )
    return recorded


def rotate_key(
    uow: UnitOfWork,
    *,
    purpose: str,
    actor: Actor,
    compromised_since: datetime | None = None,
    now: datetime | None = None,
) -> KeyRotation:
    """Make a new key active for ``purpose``; the active one becomes retired, or compromised.

    A retired key is still published (what it signed keeps verifying); a compromised one
    neither signs nor is published from the moment this commits, in every worker within the
    key store's refresh interval.
    """
    if purpose not in KEY_PURPOSES:
        raise BadRequest(f"key purpose is one of {', '.join(PURPOSES)}, not {purpose!r}")
    now = now or utcnow()
    if compromised_since is not None and compromised_since > now:
        raise BadRequest("the compromise cannot start in the future")
    session, keystore = uow.session, uow.keystore
    record_key_files(uow, actor=actor, now=now)
    previous = session.scalars(
        select(RegistryKeyRecord)
        .where(RegistryKeyRecord.purpose == purpose, RegistryKeyRecord.status == "active")
        .order_by(RegistryKeyRecord.created_at)
        .with_for_update()
    ).all()
    new = keystore.write_key(purpose, now=now)
    status = "retired" if compromised_since is None else "compromised"
    files = {k.kid: k for k in keystore.key_files()}
    for row in previous:
        row.status = status
        row.compromised_since = compromised_since
        row.changed_at = now
        if row.kid in files:  # so that a later `registry init` agrees with the database
            keystore.mark_file(files[row.kid], status, compromised_since)
    row = _row(new, "active", now)
    session.add(row)
    session.flush()
    for changed in [*previous, row]:
        _changed(uow, changed, now)
    record(
        session,
        actor=actor,
        action="key.rotate",
        object_type="RegistryKey",
        object_id=new.kid,
        detail={
            "purpose": purpose,
            "previous": [r.kid for r in previous],
            "compromised_since": compromised_since.isoformat() if compromised_since else None,
        },
        at=now,
    )
    return KeyRotation(key=new, replaced=[r.kid for r in previous], replaced_status=status)

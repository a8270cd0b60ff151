"""The published ruleset versions: loaded from files, extended by administrators, parsed once.

A version, once stored, never changes its rules: a change in law is a new file, an emergency
extension is a new version made by copying the latest one; the one change allowed is setting
its ``effective_until`` (closing it). Every process keeps the parsed versions keyed by
the hash of their document, so a version added by another process is parsed on first sight and
nothing is parsed twice.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit.service import Actor, record
from registry.certificates.models import RulesetVersion
from registry.certificates.rulesets import Ruleset, load_ruleset, load_rulesets
from registry.crypto.canonical import canonical_json, sha256_hex
from registry.db import UnitOfWork
from registry.errors import BadRequest, Conflict, NotFound
from registry.transparency import log

_FILE_NAME = re.compile(r"[A-Z]{2}\.v[1-9][0-9]*\.json")
_parsed: dict[str, Ruleset] = {}
_parsed_lock = threading.Lock()


def document_hash(document: dict[str, Any]) -> str:
    """SHA-256 of a ruleset document's RFC 8785 form: what tells two documents apart."""
    return sha256_hex(canonical_json(document))


def _parse(row: RulesetVersion) -> Ruleset:
    with _parsed_lock:
        ruleset = _parsed.get(row.sha256)
        if ruleset is None:
            ruleset = load_ruleset(row.document)
            _parsed[row.sha256] = ruleset
        return ruleset


def _store(
    session: Session,
    *,
    document: dict[str, Any],
    ruleset: Ruleset,
    source: str,
    actor: Actor,
    now: datetime,
) -> RulesetVersion:
    row = RulesetVersion(
        destination=ruleset.destination,
        version=ruleset.version,
        document=document,
        sha256=document_hash(document),
        effective_from=ruleset.effective_from,
        effective_until=ruleset.effective_until,
        source=source,
        loaded_at=now,
        loaded_by=actor.actor_id,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"{ruleset.destination} version {ruleset.version} was published meanwhile; try again"
        ) from exc
    _log_version(session, row, now)
    record(
        session,
        actor=actor,
        action="ruleset.create",
        object_type="Ruleset",
        object_id=f"{ruleset.destination}.v{ruleset.version}",
        detail={"source": source, "sha256": row.sha256},
        at=now,
    )
    return row


def _log_version(session: Session, row: RulesetVersion, now: datetime) -> None:
    """The public leaf of a published (or closed) version: which rules, by their digest."""
    fields = {
        "destination": row.destination,
        "version": row.version,
        "sha256": row.sha256,
        "effective_from": row.effective_from.isoformat(),
        "effective_until": row.effective_until.isoformat() if row.effective_until else None,
    }
    ref = f"{row.destination}.v{row.version}"
    log.append(session, [log.leaf("ruleset.published", fields, ref=ref)], at=now)


def sync_files(uow: UnitOfWork, *, rulesets_dir: Path, actor: Actor, now: datetime) -> list[str]:
    """Store the ruleset files not stored yet; a stored version whose file changed is an error."""
    session = uow.session
    load_rulesets(rulesets_dir)  # every file must load before any is stored
    stored = {
        (row.destination, row.version): row.sha256
        for row in session.scalars(select(RulesetVersion))
    }
    added: list[str] = []
    for path in sorted(p for p in rulesets_dir.glob("*.json") if _FILE_NAME.fullmatch(p.name)):
        document = json.loads(path.read_text("utf-8"))
        ruleset = load_ruleset(document)
        known = stored.get((ruleset.destination, ruleset.version))
        if known == document_hash(document):
            continue
        if known is not None:
            if _close(session, document=document, ruleset=ruleset, actor=actor, now=now):
                added.append(f"{ruleset.destination}.v{ruleset.version} closed")
                continue
            raise Conflict(
                f"{path.name}: {ruleset.destination} version {ruleset.version} is already "
                "published with different content; a change needs a new version number (only "
                "effective_until may be added to close a version)"
            )
        _store(session, document=document, ruleset=ruleset, source="file", actor=actor, now=now)
        added.append(f"{ruleset.destination}.v{ruleset.version}")
    return added


def _close(
    session: Session, *, document: dict[str, Any], ruleset: Ruleset, actor: Actor, now: datetime
) -> bool:
    """Store a file that differs from its stored version only by ``effective_until``.

    Closing a version is the one change a published version allows: the rules themselves, and
    so every verdict already made under them, stay exactly as they were.
    """
    row = session.scalars(
        select(RulesetVersion).where(
            RulesetVersion.destination == ruleset.destination,
            RulesetVersion.version == ruleset.version,
        )
    ).one()
    rest = {k: v for k, v in document.items() if k != "effective_until"}
    if rest != {k: v for k, v in row.document.items() if k != "effective_until"}:
        return False
    before = row.effective_until
    row.document = document
    row.sha256 = document_hash(document)
    row.effective_until = ruleset.effective_until
    session.flush()
    _log_version(session, row, now)
    record(
        session,
        actor=actor,
        action="ruleset.close",
        object_type="Ruleset",
        object_id=f"{ruleset.destination}.v{ruleset.version}",
        detail={
            "effective_until": ruleset.effective_until.isoformat()
            if ruleset.effective_until
            else None,
            "before": before.isoformat() if before else None,
            "sha256": row.sha256,
        },
        at=now,
    )
    return True


def versions(session: Session, *, destination: str | None = None) -> Sequence[RulesetVersion]:
    """Stored versions, by destination and version; 404 for a destination without any."""
    query = select(RulesetVersion).order_by(RulesetVersion.destination, RulesetVersion.version)
    if destination is not None:
        query = query.where(RulesetVersion.destination == destination.upper())
    rows = session.scalars(query).all()
    if destination is not None and not rows:
        raise NotFound(f"no ruleset for destination {destination!r}")
    return rows


def rulesets(session: Session) -> tuple[Ruleset, ...]:
    """Every stored version, parsed (each document once per process)."""
    rows = session.execute(
        select(RulesetVersion.id, RulesetVersion.sha256).order_by(RulesetVersion.id)
    ).all()
    missing = [row_id for row_id, sha in rows if sha not in _parsed]
    if missing:
        for row in session.scalars(select(RulesetVersion).where(RulesetVersion.id.in_(missing))):
            _parse(row)
    return tuple(_parsed[sha] for _row_id, sha in rows)


def add_extension(
    uow: UnitOfWork,
    *,
    destination: str,
    starts: date,
    ends: date,
    extra_days: int,
    reason: str,
    actor: Actor,
    now: datetime,
) -> tuple[RulesetVersion, Ruleset]:
    """A new version of a destination's latest ruleset with one more validity extension."""
    session = uow.session
    latest = versions(session, destination=destination)[-1]
    document = copy.deepcopy(latest.document)
    document["version"] = latest.version + 1
    # an extension only lengthens validity: it never judges issued certificates again
    document.pop("applies_to_issued", None)
    document["extensions"] = [
        *document.get("extensions", []),
        {
            "from": starts.isoformat(),
            "until": ends.isoformat(),
            "extra_days": extra_days,
            "reason": reason,
        },
    ]
    try:
        ruleset = load_ruleset(document)
    except ValueError as exc:
        raise BadRequest(f"the extension does not make a valid ruleset: {exc}") from exc
    row = _store(
        session, document=document, ruleset=ruleset, source="extension", actor=actor, now=now
    )
    return row, ruleset

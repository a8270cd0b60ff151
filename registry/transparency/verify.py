"""``registry log verify``: recompute the log from the database and hold everything to it.

It checks, and names what it finds: the entries are dense and each hashes to its leaf; the
tree recomputed from them equals the stored tiles and every signed checkpoint (signature
included); a witness's saved checkpoint is one of this tree's (else the log was truncated,
rewritten or forked); every audit event matches the commitment in its leaf and every audit
leaf still has its event; every certificate's status and card, and every revocation-list
entry, is what the log says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.audit.service import AUDIT_LEAF, commitment
from registry.certificates.models import Certificate, CertificateRevocation
from registry.crypto.merkle import TileBuilder, leaf_hash
from registry.crypto.notes import Checkpoint, NoteError, Verifier, open_checkpoint
from registry.transparency import log
from registry.transparency.models import LogCheckpoint, LogEntry, LogTile

BATCH = 5000
STATUS_OF = {
    "certificate.issued": "valid",
    "certificate.reissued": "valid",
    "certificate.revoked": "revoked",
    "certificate.superseded": "superseded",
}


@dataclass
class Report:
    """What was checked, and every problem found (empty: the log holds)."""

    size: int = 0
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)


def _entries(session: Session) -> Iterator[LogEntry]:
    """Sequenced entries in leaf order, then the pending ones in the order they were written."""
    last = -1
    while True:
        rows = session.scalars(
            select(LogEntry).where(LogEntry.seq > last).order_by(LogEntry.seq).limit(BATCH)
        ).all()
        if not rows:
            break
        yield from rows
        last = rows[-1].seq or 0
        session.expunge_all()
    yield from session.scalars(select(LogEntry).where(LogEntry.seq.is_(None)).order_by(LogEntry.id))


def verify_log(
    session: Session, *, log_key: Verifier, witnessed: Iterable[Checkpoint] = ()
) -> Report:
    report = Report()
    builder = TileBuilder(0, lambda level, index: b"")
    audit_leaves: dict[bytes, int] = {}
    certificates: dict[str, dict[str, Any]] = {}
    revoked_cards: dict[tuple[str, str, str], int | None] = {}
    for entry in _entries(session):
        body = bytes(entry.body)
        where = f"leaf {entry.seq}" if entry.seq is not None else f"pending entry {entry.id}"
        if leaf_hash(body) != bytes(entry.leaf_hash):
            report.problem(f"{where}: its content does not hash to its leaf (rewritten)")
        if entry.seq is not None:
            if entry.seq != builder.size:
                report.problem(
                    f"leaf {builder.size} is missing: the log jumps to {entry.seq} (deleted)"
                )
                builder.size = entry.seq  # go on, to report what else is wrong
            builder.append(leaf_hash(body))
        try:
            fields = log.decode(body)
        except ValueError:
            report.problem(f"{where}: not a log entry")
            continue
        kind = fields.get("type")
        if kind == AUDIT_LEAF:
            audit_leaves[leaf_hash(body)] = entry.seq if entry.seq is not None else -1
        elif kind in STATUS_OF:
            state = certificates.setdefault(str(fields["certificate"]), {})
            state["status"] = STATUS_OF[kind]
            state["where"] = where
            if "kid" in fields:
                state["card"] = (fields["kid"], fields["rid"])
        elif kind == "card.revoked":
            revoked_cards[(fields["certificate"], fields["kid"], fields["rid"])] = entry.seq
        report.checked["entries"] += 1
    report.size = builder.size
    _check_tree(session, builder, report, log_key, list(witnessed))
    _check_audit(session, audit_leaves, report)
    _check_certificates(session, certificates, revoked_cards, report)
    return report


def _check_tree(
    session: Session,
    builder: TileBuilder,
    report: Report,
    log_key: Verifier,
    witnessed: list[Checkpoint],
) -> None:
    tree = builder.tree()
    for tile in session.scalars(select(LogTile)):
        mine = bytes(builder.tiles.get((tile.level, tile.idx), b""))
        if bytes(tile.hashes) != mine:
            report.problem(f"tile {tile.level}/{tile.idx} differs from the tree of the entries")
        report.checked["tiles"] += 1
    latest = 0
    for row in session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size)):
        try:
            checkpoint, _ = open_checkpoint(row.note, log_key)
        except NoteError as exc:
            report.problem(f"checkpoint {row.size}: {exc}")
            continue
        if checkpoint.size != row.size or checkpoint.root != bytes(row.root):
            report.problem(f"checkpoint {row.size}: its signed text and its row differ")
        elif row.size > tree.size:
            report.problem(
                f"checkpoint {row.size} was signed, but the log has only {tree.size} leaves "
                "(truncated)"
            )
        elif tree.root(row.size) != checkpoint.root:
            report.problem(f"checkpoint {row.size}: the entries give another root (rewritten)")
        latest = max(latest, row.size)
        report.checked["checkpoints"] += 1
    if tree.size and latest < tree.size:
        report.problem(f"{tree.size - latest} sequenced leaves are under no signed checkpoint")
    for checkpoint in witnessed:
        if checkpoint.origin != log_key.name:
            report.problem(f"a witnessed checkpoint is of another log ({checkpoint.origin})")
        elif checkpoint.size > tree.size:
            report.problem(
                f"a witness saw {checkpoint.size} leaves; the database holds {tree.size} "
                "(truncated or rolled back)"
            )
        elif tree.root(checkpoint.size) != checkpoint.root:
            report.problem(
                f"a witness saw another tree of size {checkpoint.size} (rewritten or forked)"
            )
        report.checked["witnessed checkpoints"] += 1


def _check_audit(session: Session, leaves: dict[bytes, int], report: Report) -> None:
    last = 0
    seen: set[bytes] = set()
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(BATCH)
        ).all()
        if not rows:
            break
        for event in rows:
            expected = leaf_hash(log.leaf(AUDIT_LEAF, {"commitment": commitment(event)}).body)
            if expected != bytes(event.leaf_hash) or expected not in leaves:
                report.problem(
                    f"audit event {event.id} ({event.action}) does not match any leaf "
                    "(changed or added behind the log's back)"
                )
            seen.add(expected)
            report.checked["audit events"] += 1
            last = event.id
        session.expunge_all()
    for leaf, seq in leaves.items():
        if leaf not in seen:
            where = f"leaf {seq}" if seq >= 0 else "a pending entry"
            report.problem(f"{where} commits to an audit event that is gone (deleted)")


def _check_certificates(
    session: Session,
    logged: dict[str, dict[str, Any]],
    revoked_cards: dict[tuple[str, str, str], int | None],
    report: Report,
) -> None:
    stored = session.execute(
        select(Certificate.id, Certificate.status, Certificate.kid, Certificate.rid)
    ).all()
    for certificate_id, status, kid, rid in stored:
        state = logged.get(certificate_id)
        if state is None:
            report.problem(f"certificate {certificate_id} is not in the log (issued unseen)")
            continue
        if state["status"] != status:
            report.problem(
                f"certificate {certificate_id} is {status} in the database but "
                f"{state['status']} in the log ({state['where']})"
            )
        if state.get("card") != (kid, rid):
            report.problem(f"certificate {certificate_id}'s card is not the one the log names")
        report.checked["certificates"] += 1
    known = {row[0] for row in stored}
    for certificate_id in logged.keys() - known:
        report.problem(f"certificate {certificate_id} is in the log but not in the database")
    listed = {
        (row.certificate_id, row.kid, row.rid)
        for row in session.scalars(select(CertificateRevocation))
    }
    for card in revoked_cards.keys() - listed:
        report.problem(
            f"card {card[1]}/{card[2]} of certificate {card[0]} was revoked in the log but is "
            "missing from the revocation list"
        )
    for card in listed - revoked_cards.keys():
        report.problem(f"revocation of card {card[1]}/{card[2]} is not in the log")
    report.checked["revocation-list entries"] += len(listed)

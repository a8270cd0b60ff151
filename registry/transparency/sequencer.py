"""The sequencer: integrates committed entries into the tree and signs checkpoints.

One sequencer at a time holds the lease (a row of ``log_state``), renewed in every transaction
it commits; a second one waits until the lease runs out. Each round takes the pending entries
in the order they became visible, gives them the next dense leaf indexes, appends their hashes
to the tiles, and signs a checkpoint of the new size, all in one transaction: a crash leaves
the log as it was before the round. Requests never wait for it.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.crypto.merkle import HASH_SIZE, TILE_WIDTH, TileBuilder
from registry.crypto.notes import Checkpoint, Signer
from registry.db import Database, utcnow
from registry.logs import get_logger
from registry.transparency.models import LogCheckpoint, LogEntry, LogState, LogTile

if TYPE_CHECKING:
    from collections.abc import Callable

log = get_logger("registry.transparency")
_STATE: Table = LogState.__table__  # type: ignore[assignment]
_ENTRIES: Table = LogEntry.__table__  # type: ignore[assignment]
_TILES: Table = LogTile.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = LogCheckpoint.__table__  # type: ignore[assignment]
STATE_ROW = 1
BATCH = 20_000


class LeaseLost(RuntimeError):
    """Another sequencer holds the log."""


@dataclass(frozen=True)
class Round:
    """What one round did."""

    integrated: int
    size: int
    checkpoint: bool


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _lease(connection: Connection, holder: str, now: datetime, seconds: float) -> int:
    """Take or renew the lease inside the round's transaction; the integrated size."""
    state = _STATE
    taken = connection.execute(
        update(state)
        .where(state.c.id == STATE_ROW)
        .where((state.c.holder == holder) | state.c.holder.is_(None) | (state.c.lease_until < now))
        .values(holder=holder, lease_until=now + timedelta(seconds=seconds))
        .returning(state.c.size)
    ).first()
    if taken is not None:
        return int(taken[0])
    exists = connection.execute(select(state.c.id).where(state.c.id == STATE_ROW)).first()
    if exists is not None:
        raise LeaseLost("another sequencer holds the log's lease")
    connection.execute(
        insert(state).values(
            id=STATE_ROW, size=0, holder=holder, lease_until=now + timedelta(seconds=seconds)
        )
    )
    return 0


def _tile_loader(connection: Connection) -> Callable[[int, int], bytes]:
    tiles = _TILES

    def load(level: int, index: int) -> bytes:
        found = connection.execute(
            select(tiles.c.hashes).where(tiles.c.level == level, tiles.c.idx == index)
        ).scalar_one_or_none()
        return bytes(found) if found is not None else b""

    return load


def _write_tiles(connection: Connection, builder: TileBuilder) -> None:
    table = _TILES
    rows = [
        {"level": level, "idx": index, "hashes": bytes(builder.tiles[(level, index)])}
        for level, index in sorted(builder.dirty)
    ]
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.level, table.c.idx],
            set_={"hashes": statement.excluded.hashes},
        ),
        rows,
    )


def _assign(connection: Connection, ids: list[int], first: int) -> None:
    table = _ENTRIES
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "UPDATE log_entries SET seq = v.seq FROM "
            "(SELECT unnest(%(ids)s::bigint[]) AS id, unnest(%(seqs)s::bigint[]) AS seq) v "
            "WHERE log_entries.id = v.id",
            {"ids": ids, "seqs": list(range(first, first + len(ids)))},
        )
        return
    connection.execute(
        update(table).where(table.c.id == bindparam("entry")).values(seq=bindparam("index")),
        [{"entry": entry, "index": first + n} for n, entry in enumerate(ids)],
    )


def integrate(
    db: Database,
    signer: Signer,
    *,
    holder: str | None = None,
    lease_seconds: float = 10.0,
    batch: int = BATCH,
    now: datetime | None = None,
) -> Round:
    """One round: integrate up to ``batch`` pending entries, sign a checkpoint if size grew.

    Also signs the first checkpoint of an empty log, so a witness can start from size 0.
    """
    holder = holder or holder_name()
    now = now or utcnow()
    entries = _ENTRIES
    with db.session_factory() as session:
        connection = session.connection()
        size = _lease(connection, holder, now, lease_seconds)
        pending = connection.execute(
            select(entries.c.id, entries.c.leaf_hash)
            .where(entries.c.seq.is_(None))
            .order_by(entries.c.id)
            .limit(batch)
        ).all()
        have_checkpoint = connection.execute(
            select(func.count()).select_from(_CHECKPOINTS).where(_CHECKPOINTS.c.size == size)
        ).scalar_one()
        if not pending and have_checkpoint:
            session.commit()  # the renewed lease
            return Round(0, size, False)
        builder = TileBuilder(size, _tile_loader(connection))
        for _, leaf in pending:
            builder.append(bytes(leaf))
        if pending:
            _assign(connection, [row[0] for row in pending], size)
            _write_tiles(connection, builder)
        root = builder.tree().root()
        note = signer.sign(Checkpoint(signer.name, builder.size, root).text())
        connection.execute(
            insert(_CHECKPOINTS).values(size=builder.size, root=root, note=note, created_at=now)
        )
        connection.execute(update(_STATE).where(_STATE.c.id == STATE_ROW).values(size=builder.size))
        session.commit()
    return Round(len(pending), builder.size, True)


def integrate_all(db: Database, signer: Signer, **options: object) -> Round:
    """Rounds until nothing is pending (tests, `registry log sequence --once`)."""
    total, last = 0, Round(0, 0, False)
    while True:
        last = integrate(db, signer, **options)  # type: ignore[arg-type]
        total += last.integrated
        if last.integrated == 0:
            return Round(total, last.size, total > 0 or last.checkpoint)


def run(
    db: Database,
    signer: Signer,
    *,
    interval: float,
    stop: threading.Event,
    lease_seconds: float = 10.0,
) -> None:
    """Sequence until ``stop`` is set: a round, then wait ``interval`` seconds (or less)."""
    holder = holder_name()
    while not stop.is_set():
        try:
            done = integrate(db, signer, holder=holder, lease_seconds=lease_seconds)
            if done.integrated:
                log.info("log.sequenced", leaves=done.integrated, size=done.size)
            if done.integrated >= BATCH:
                continue  # a backlog: the next round at once
        except LeaseLost:
            log.info("log.lease_held_elsewhere")
        except Exception:  # the database may be away; the next round tries again
            log.exception("log.sequence_failed")
        stop.wait(interval)


def backlog(db: Database) -> tuple[int, datetime | None]:
    """Entries not yet integrated, and when the oldest of them was written."""
    entries = _ENTRIES
    with db.read_session() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(entries.c.created_at)).where(entries.c.seq.is_(None))
        ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile ``level/index`` holds in a tree of ``size`` (0 when none)."""
    count = size // TILE_WIDTH**level  # hashes at this level
    full = count // TILE_WIDTH
    if index < full:
        return TILE_WIDTH
    if index == full:
        return count % TILE_WIDTH
    return 0


__all__ = ["HASH_SIZE", "LeaseLost", "Round", "backlog", "integrate", "integrate_all", "run"]

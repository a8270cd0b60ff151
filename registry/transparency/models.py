"""The log's tables: entries written by requests, tiles and checkpoints written by the sequencer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UTCDateTime


class LogEntry(Base):
    """One leaf, public in full: written in the request's transaction, sequenced later.

    ``seq`` is the leaf index, NULL until the sequencer integrates the entry; the partial
    index keeps the pending ones cheap to find however long the log grows.
    """

    __tablename__ = "log_entries"
    __table_args__ = (
        Index(
            "ix_log_entries_pending",
            "id",
            postgresql_where="seq IS NULL",
            sqlite_where="seq IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str | None] = mapped_column(String(128), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogTile(Base):
    """A tile of the tree (c2sp.org/tlog-tiles): up to 256 hashes, appended to, never rewritten."""

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A signed checkpoint (c2sp.org/tlog-checkpoint) of one tree size."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogCosignature(Base):
    """A witness's cosignature line on one of our checkpoints, as the witness sent it."""

    __tablename__ = "log_cosignatures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    witness: Mapped[str] = mapped_column(String(200))
    line: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogWitness(Base):
    """A witness whose cosignatures the registry accepts: its verifier key (name+id+key)."""

    __tablename__ = "log_witnesses"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogState(Base):
    """The one row the sequencer owns: the integrated size and its lease."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""Sealing stored values again: padded to their bucket, under the primary data key.

Values sealed before padding was introduced (format 1), or under a data key that is no longer
the primary one, open as before but their length tells more than their bucket. ``reseal_batch``
goes through one sealed column in primary-key order and seals every such value again, bound to
the same context. Each batch is one transaction; a value is written only if it is still the one
read (a concurrent write wins), and a value already padded under the primary key is left
alone, so running it again, or after an interruption, changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from registry.crypto.encryption import DataCipher, DecryptionError


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values and what each value is bound to (from its row)."""

    entity: type[Any]
    attribute: str
    context: Callable[[Any], bytes]

    @property
    def name(self) -> str:
        """``table.column``."""
        table = inspect(self.entity).local_table.name
        return f"{table}.{getattr(self.entity, self.attribute).property.columns[0].name}"


@dataclass(frozen=True)
class Batch:
    """What one batch of a column did, and where the next one starts (None: column done)."""

    looked_at: int
    resealed: int
    unreadable: tuple[str, ...]
    after: Any


def count(session: Session, column: SealedColumn) -> int:
    """Rows holding a value in the column."""
    attribute = getattr(column.entity, column.attribute)
    return session.scalar(select(func.count()).where(attribute.is_not(None))) or 0


def reseal_batch(
    session: Session, cipher: DataCipher, column: SealedColumn, *, after: Any, size: int
) -> Batch:
    """Seal again the values of the next ``size`` rows after primary key ``after`` that need it.

    A value that does not open is left as it is and named in ``unreadable`` (the integrity
    errors of reads report it too); the caller commits.
    """
    key = inspect(column.entity).primary_key[0]
    attribute = getattr(column.entity, column.attribute)
    query = select(column.entity).where(attribute.is_not(None)).order_by(key).limit(size)
    if after is not None:
        query = query.where(key > after)
    rows = list(session.scalars(query))
    resealed, unreadable = 0, []
    for row in rows:
        sealed = getattr(row, column.attribute)
        if not cipher.needs_rotation(sealed):
            continue
        identity = getattr(row, key.name)
        context = column.context(row)
        try:
            plain = cipher.decrypt(sealed, context=context)
        except DecryptionError:
            unreadable.append(str(identity))
            continue
        written = session.execute(
            update(column.entity)
            .where(key == identity, attribute == sealed)
            .values({column.attribute: cipher.encrypt(plain, context=context)})
            .execution_options(synchronize_session=False)
        )
        resealed += written.rowcount  # type: ignore[attr-defined]
    last = getattr(rows[-1], key.name) if len(rows) == size else None
    return Batch(looked_at=len(rows), resealed=resealed, unreadable=tuple(unreadable), after=last)

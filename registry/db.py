"""Engine, session factory, declarative base and the unit of work."""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.types import TypeDecorator

from registry.events import NO_SUBSCRIBERS, Event, MessageBus

if TYPE_CHECKING:
    from registry.config import Settings
    from registry.crypto.encryption import DataCipher
    from registry.crypto.keystore import KeyStore

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC, aware."""
    return datetime.now(UTC)


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for SQLite (serialised writers) or PostgreSQL (psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # a failed statement's message (and so a logged traceback) never carries its parameters:
    # they hold names, document numbers and whatever text a caller sent
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _serialise_sqlite(engine)
    else:
        # No ping before every checkout (a round trip per transaction): a connection is pinged
        # only when it sat idle in the pool, and recycled after a while; a connection that
        # died under use fails its statement, the pool is invalidated, and the caller's
        # transaction fails whole (verification retries once on a fresh connection).
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
        kwargs.setdefault("pool_recycle", POOL_RECYCLE_SECONDS)
        engine = create_engine(url, **kwargs)
        _ping_when_idle(engine)
    _engines.add(engine)
    return engine


POOL_RECYCLE_SECONDS = 300
IDLE_PING_SECONDS = 1.0  # a connection unused this long is pinged before it is handed out


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            # the pool throws this connection away and hands out another (up to three tries)
            raise DisconnectionError(f"an idle connection was gone: {exc}") from exc


def _serialise_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers the write lock; two writers that read the
    # audit chain's head would both succeed in reading and one would fail late. BEGIN IMMEDIATE
    # takes the lock up front so concurrent requests queue instead.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps the file consistent on crash
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get("read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def dispose_engine() -> None:
    """Drop pooled connections inherited across fork (gunicorn's post_fork hook calls this)."""
    for engine in list(_engines):
        engine.dispose(close=False)


class UnitOfWork:
    """One transaction: ``with uow: ...; uow.commit()``; anything not committed rolls back.

    It carries what services need besides the session: the app's context (settings, key
    store, data cipher, blind-index key) and the message bus its events are published on.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        bus: MessageBus = NO_SUBSCRIBERS,
        context: AppContext | None = None,
        read_only: bool = False,
    ) -> None:
        self._session_factory = session_factory
        self.read_only = read_only
        self._session: Session | None = None
        self.committed = False
        self.bus = bus
        self._context = context

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    @property
    def context(self) -> AppContext:
        if self._context is None:
            raise RuntimeError("this unit of work has no app context")
        return self._context

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def keystore(self) -> KeyStore:
        return self.context.keystore

    @property
    def cipher(self) -> DataCipher:
        return self.context.cipher

    @property
    def index_key(self) -> bytes:
        return self.context.index_key

    def publish(self, event: Event) -> list[Any]:
        """Hand an event to its subscribers, in this transaction; what they returned.

        Rows the subscribers stage (``stage_rows``: audit events, log leaves) are written when
        the outermost event is handled, one multi-row INSERT per table, still in this
        transaction; a subscriber that fails leaves nothing staged behind.
        """
        session = self.session
        if STAGED in session.info:
            return self.bus.handle(self, event)
        session.info[STAGED] = {}
        try:
            answers = self.bus.handle(self, event)
            _write_staged(session)
        finally:
            session.info.pop(STAGED, None)
        return answers

    def __enter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        self.committed = False
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._session is not None
        try:
            # closing ends a read-only transaction and keeps what it loaded usable
            if not self.committed and not self.read_only:
                self._session.rollback()
        finally:
            self._session.close()
            self._session = None

    def commit(self) -> None:
        """Commit everything done in this unit of work."""
        self.session.commit()
        self.committed = True

    def rollback(self) -> None:
        """Throw away everything done so far."""
        self.session.rollback()


class AppContext(Protocol):
    """What a unit of work carries of the running app (registry.web.RegistryContext)."""

    settings: Settings
    keystore: KeyStore
    cipher: DataCipher
    index_key: bytes


class Database:
    """The engine and session factory of one app."""

    def __init__(self, url: str, *, pool_size: int = 5, bus: MessageBus = NO_SUBSCRIBERS) -> None:
        self.url = url
        self.bus = bus
        self.context: AppContext | None = None  # set by create_app once the context exists
        # what this process built from the database, each with the data version it shows
        # (published documents): replaced when the version changes, never served stale
        self.memo: dict[str, Any] = {}
        pool = (
            {} if url.startswith("sqlite") else {"pool_size": pool_size, "max_overflow": pool_size}
        )
        self.engine = make_engine(url, **pool)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.read_session_factory = sessionmaker(
            self.engine.execution_options(read_only=True), expire_on_commit=False
        )
        # each statement its own transaction: a read needs no BEGIN and no ROLLBACK, and a
        # single statement that writes several rows commits them together (PostgreSQL)
        self._autocommit_engine = (
            self.engine
            if url.startswith("sqlite")
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work."""
        return UnitOfWork(self.session_factory, bus=self.bus, context=self.context)

    def reading(self) -> UnitOfWork:
        """A unit of work that only reads: a read-only transaction (on SQLite, no write lock)."""
        return UnitOfWork(
            self.read_session_factory, bus=self.bus, context=self.context, read_only=True
        )

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads; closing it ends the transaction and keeps loaded objects usable."""
        session = self.read_session_factory()
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def autocommit_connection(self) -> Iterator[Connection]:
        """A connection without a session whose every statement commits by itself (PostgreSQL).

        For the busiest path, plain statements: a session's transaction bookkeeping around
        them costs about as much CPU as the statements.
        """
        with self._autocommit_engine.connect() as connection:
            yield connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def lost_connection(error: BaseException) -> bool:
    """Whether a database error means the connection died (a retry on a fresh one may work)."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def row_of(entity: Any, *, without_id: bool = False) -> dict[str, Any]:
    """An ORM object's column values as a row for a Core INSERT (without the id the database
    gives it, with ``without_id``)."""
    return {column: getattr(entity, column) for column in _columns(entity.__table__, without_id)}


@functools.cache
def _columns(table: Table, without_id: bool) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if not (without_id and c.name == "id"))


def as_stored(session: Session, entity: Any) -> None:
    """An object whose row a Core statement wrote joins the session as if it had been loaded:
    no flush writes it again, and what it was not given is read when asked for."""
    make_transient_to_detached(entity)
    session.add(entity)


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


STAGED = "registry.staged_rows"


def stage_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> bool:
    """Queue rows for one INSERT when the event being handled is done; False outside events.

    Only for rows nothing reads back in the same event (nothing is returned to the caller).
    """
    staged: dict[Table, list[dict[str, Any]]] | None = session.info.get(STAGED)
    if staged is None:
        return False
    staged.setdefault(table, []).extend(rows)
    return True


def _write_staged(session: Session) -> None:
    staged: dict[Table, list[dict[str, Any]]] = session.info.pop(STAGED)
    if staged:
        connection = session.connection()
        for table, rows in staged.items():
            connection.execute(insert(table), rows)

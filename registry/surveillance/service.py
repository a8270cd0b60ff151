"""Surveillance counts kept in the examination's transaction, and signed, protected extracts.

Every examination version that becomes current adds its tally to one microcell; an amendment or
a withdrawal takes the old tally back in the same transaction. Extracts read only these counts
(never a record), protect whole calendar years (docs/surveillance.md) and sign what they return.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from registry.audit.service import record as audit
from registry.auth.permissions import authorize
from registry.auth.principal import Principal
from registry.crypto import jws
from registry.crypto.canonical import sha256_hex
from registry.crypto.digests import sha256_of_parts
from registry.crypto.encryption import DataCipher
from registry.db import Database, UnitOfWork, dialect_insert, stage_rows, utcnow
from registry.errors import BadRequest, DomainError, Forbidden
from registry.events import (
    ReferralsCompleted,
    SurveillanceReleased,
    VersionRetired,
    VersionStored,
)
from registry.examinations.models import Examination
from registry.referrals.queries import completed_programme_referrals
from registry.surveillance import dhis2, formats
from registry.surveillance.cube import (
    DIMENSIONS,
    FLAT_DIMENSIONS,
    MEASURES,
    NO_DESTINATION,
    Cube,
    Granularity,
    Microcell,
    Period,
    build_cube,
    deprecation_warnings,
    measure_column,
    read_measures,
)
from registry.surveillance.disclosure import DEFAULT_K, ProtectedCube, protect, protect_greedy
from registry.surveillance.extract import ExtractRequest, ProtectedTable, extract
from registry.surveillance.ledger import added_since, combine, layer_cube, released
from registry.surveillance.models import (
    SurveillanceCount,
    SurveillanceLayer,
    SurveillanceProtection,
    SurveillanceTally,
)
from registry.surveillance.tally import Tally, tally_of

KEY_COLUMNS = ("month", "origin", "destination", "purpose", "sex", "age_band")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "fhir": "application/fhir+json",
    "dhis2": "application/json",
    "adx": "application/adx+xml",
}
EXTENSIONS = {"csv": "csv", "json": "json", "fhir": "json", "dhis2": "json", "adx": "xml"}
SCOPES = ("origin", "destination")
# A pre-departure examination always names its destination: the cell can never hold a count.
KNOWN_EMPTY = ({"purpose": "pre-departure", "destination": NO_DESTINATION},)
# What a client is told to wait before asking again for an extract whose pattern is pending.
RETRY_AFTER_SECONDS = 30
# A stored row with no cells is a request for the pattern, left for the surveillance worker.
_REQUESTED = 0
# The end of a stored pattern computed by method 1.2 (a status byte is 0 to 3, never this).
_METHOD_1_2 = b"\xff1.2"


class ProtectionPending(DomainError):
    """The suppression pattern of a data version is not computed yet: ask again later.

    Protecting a year takes longer than a web request may last, so requests never compute it;
    the surveillance worker does (`registry surveillance worker`).
    """

    status = 202
    error = "protection_pending"


# --- counting, in the examination's transaction ---------------------------------------------


def _context(version_id: int) -> bytes:
    return f"surveillance-tally:{version_id}".encode()


def count(
    session: Session, *, cipher: DataCipher, version_id: int, tally: Tally, new: bool = False
) -> None:
    """Add a version's tally to its microcell and keep it, sealed, to take back later.

    ``new``: the version was stored in this transaction, so it has no tally yet to look for.
    """
    sealed = cipher.encrypt(tally.to_bytes(), context=_context(version_id))
    if new:
        row = {"version_id": version_id, "sealed": sealed}
        if not stage_rows(session, cast(Table, SurveillanceTally.__table__), [row]):
            session.execute(insert(SurveillanceTally), row)
        _apply(session, tally, +1)
        return
    existing = session.get(SurveillanceTally, version_id)
    if existing is None:
        session.add(SurveillanceTally(version_id=version_id, sealed=sealed))
    else:
        existing.sealed = sealed
    _apply(session, tally, +1)


def uncount(session: Session, *, cipher: DataCipher, version_id: int) -> Tally | None:
    """Take a version's tally back out of the counts; None if it was never counted."""
    row = session.get(SurveillanceTally, version_id)
    if row is None:
        return None
    tally = Tally.from_bytes(cipher.decrypt(row.sealed, context=_context(version_id)))
    _apply(session, tally, -1)
    return tally


def set_referrals_completed(
    session: Session, *, cipher: DataCipher, version_id: int, completed: int
) -> None:
    """Move the referrals-completed count of a counted version to `completed`."""
    tally = uncount(session, cipher=cipher, version_id=version_id)
    if tally is not None:
        count(
            session,
            cipher=cipher,
            version_id=version_id,
            tally=tally.with_completed_referrals(completed),
        )


def _apply(session: Session, tally: Tally, sign: int) -> None:
    """Add (or, with sign -1, subtract) a tally to its microcell."""
    _add_rows(session, [(tally.key, {m: sign * tally.counts.get(m, 0) for m in MEASURES})])


def add_microcells(session: Session, cells: Iterable[Microcell]) -> None:
    """Add counts with no examination behind them: synthetic demo data and benchmarks only."""
    _add_rows(
        session, [(key, {m: int(values.get(m, 0)) for m in MEASURES}) for key, values in cells]
    )


@functools.lru_cache(maxsize=4)
def _upsert(insert_of: Any) -> Any:
    """The microcells' upsert for a dialect's INSERT, built once."""
    table = cast(Table, SurveillanceCount.__table__)
    statement = insert_of(table)
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            measure_column(m): table.c[measure_column(m)] + statement.excluded[measure_column(m)]
            for m in MEASURES
        },
    )


def _add_rows(session: Session, cells: list[tuple[Sequence[str], dict[str, int]]]) -> None:
    """Upsert microcells, adding every measure to what is stored (one statement, no read)."""
    if not cells:
        return
    statement = _upsert(dialect_insert(session))
    rows = [
        {
            **dict(zip(KEY_COLUMNS, key, strict=True)),
            **{measure_column(m): value for m, value in counts.items()},
        }
        for key, counts in cells
    ]
    session.execute(statement, rows)


def clear(session: Session) -> None:
    """Remove every count and tally (before a rebuild)."""
    session.execute(delete(SurveillanceTally))
    session.execute(delete(SurveillanceCount))


def counts(session: Session, *, year: int | None = None) -> dict[tuple[str, ...], dict[str, int]]:
    """The stored microcells with any count, optionally of one calendar year."""
    table = cast(Table, SurveillanceCount.__table__)
    query = select(*(table.c[c] for c in KEY_COLUMNS + tuple(map(measure_column, MEASURES))))
    if year is not None:
        query = query.where(table.c.month >= f"{year:04d}-01", table.c.month <= f"{year:04d}-12")
    cells: dict[tuple[str, ...], dict[str, int]] = {}
    for row in session.execute(query):
        if any(row[6:]):
            cells[tuple(row[:6])] = dict(zip(MEASURES, map(int, row[6:]), strict=True))
    return cells


# --- extracts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractQuery:
    """An extract request as a caller states it, before scoping."""

    granularity: str
    first: str
    last: str
    grouping: tuple[str, ...] = ()
    measures: tuple[str, ...] = MEASURES
    k: int = DEFAULT_K
    rounding: int | None = None
    format: str = "json"
    scope: str = "origin"
    country: str | None = None  # only an administrator chooses; a ministry gets its own
    org_unit: str | None = None  # DHIS2 organisation unit code; the scope's country by default


@dataclass(frozen=True)
class Release:
    """A signed extract: the bytes exactly as served, and the detached JWS over them."""

    body: bytes
    media_type: str
    signature: str
    method: Mapping[str, object]
    filename: str
    version: str  # the data version the protection was computed on
    warnings: tuple[str, ...] = ()  # deprecated input the request used (a Warning header each)


class _ProtectedCache:
    """Protected cubes by (year, k, closed months, data fingerprint): protection runs once."""

    def __init__(self, size: int = 8) -> None:
        self._entries: OrderedDict[tuple[object, ...], tuple[ProtectedCube, _Plan]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self.computing = threading.Lock()

    def get(self, key: tuple[object, ...]) -> tuple[ProtectedCube, _Plan] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], protected: tuple[ProtectedCube, _Plan]) -> None:
        with self._lock:
            self._entries[key] = protected
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PROTECTED = _ProtectedCache()


def closed_through(now: datetime) -> Period:
    """The last month whose counts are final: the month before `now`."""
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return Period(year, Granularity.MONTH, month)


def fingerprint(microcells: Iterable[Microcell]) -> str:
    """A digest of a year's microcells: the version of the data a protection belongs to."""
    ordered = sorted((tuple(k), tuple(v[m] for m in MEASURES)) for k, v in microcells)
    return sha256_of_parts(json.dumps([key, values]).encode() for key, values in ordered)[:16]


def _year_cells(session: Session, *, year: int, now: datetime) -> tuple[list[Microcell], int]:
    """The microcells of a year's closed months at `now`, and how many months are closed."""
    last = closed_through(now)
    if year > last.year:
        raise BadRequest(f"no month of {year} is closed yet")
    closed = 12 if year < last.year else last.index
    cells: list[Microcell] = [
        (key, values)
        for key, values in counts(session, year=year).items()
        if int(key[0][5:]) <= closed
    ]
    return cells, closed


def data_version(session: Session, *, year: int, now: datetime) -> str:
    """The data version of a year at `now`: year, closed months and a digest of the counts."""
    cells, closed = _year_cells(session, year=year, now=now)
    return f"{year}:{closed}:{fingerprint(cells)}"


@dataclass(frozen=True)
class _Layer:
    """A layer of a year's release ledger (models.SurveillanceLayer), or the one to add."""

    version: str
    closed: int
    cells: tuple[Microcell, ...]


@dataclass(frozen=True)
class _Plan:
    """What a release of a year is built from now: its counts and the ledger's layers.

    No layers: nothing of the year was released yet, the release is the version's own
    pattern. Otherwise the release combines the layers (ledger.py); `new` says the last one
    (the records counted since the last release) is not in the ledger yet.
    """

    year: int
    closed: int
    version: str
    cells: tuple[Microcell, ...]
    layers: tuple[_Layer, ...] = ()
    new: bool = False


def _ledger_heads(session: Session, year: int) -> tuple[str, ...]:
    table = cast(Table, SurveillanceLayer.__table__)
    return tuple(
        session.scalars(
            select(table.c.data_version).where(table.c.year == year).order_by(table.c.seq)
        )
    )


def _ledger(session: Session, year: int) -> list[_Layer]:
    rows = session.scalars(
        select(SurveillanceLayer)
        .where(SurveillanceLayer.year == year)
        .order_by(SurveillanceLayer.seq)
    )
    return [
        _Layer(
            row.data_version,
            row.closed_months,
            tuple(
                (tuple(key), dict(zip(MEASURES, values, strict=True)))
                for key, values in json.loads(zlib.decompress(row.cells))
            ),
        )
        for row in rows
    ]


def _plan(session: Session, *, year: int, now: datetime) -> _Plan:
    """The counts a release of `year` at `now` publishes, over the layers already released."""
    cells, closed = _year_cells(session, year=year, now=now)
    version = f"{year}:{closed}:{fingerprint(cells)}"
    ledger = _ledger(session, year)
    if not ledger:
        return _Plan(year, closed, version, tuple(cells))
    if ledger[-1].version == version:
        return _Plan(year, closed, version, tuple(cells), tuple(ledger))
    added, removed = added_since(cells, [layer.cells for layer in ledger])
    if removed:
        # records released before went away: a layer cannot take them back, so the release
        # stays what was released last (docs/surveillance.md, section 5.1)
        last = ledger[-1]
        return _Plan(year, last.closed, last.version, tuple(_sum(ledger)), tuple(ledger))
    last = ledger[-1]
    if last.closed < 12:
        # the year is open: records late for months already released wait for the year's
        # revision, after it closes; the release adds the months closed since (section 5.1)
        added = [(key, values) for key, values in added if int(key[0][5:]) > last.closed]
        if not added and closed == last.closed:
            return _Plan(year, last.closed, last.version, tuple(_sum(ledger)), tuple(ledger))
        cells = sorted(released([*(layer.cells for layer in ledger), added]).items())
        version = f"{year}:{closed}:{fingerprint(cells)}"
    layer = _Layer(version, closed, tuple(added))
    return _Plan(year, closed, version, tuple(cells), (*ledger, layer), new=True)


def _sum(ledger: Sequence[_Layer]) -> list[Microcell]:
    return sorted(released(layer.cells for layer in ledger).items())


def _year_cube(year: int, closed: int, cells: Iterable[Microcell]) -> Cube:
    cells = list(cells)
    destinations = {key[2] for key, _ in cells}
    known_empty = [p for p in KNOWN_EMPTY if p["destination"] in destinations]
    return build_cube(cells, year=year, closed_months=closed, known_empty=known_empty)


def _patterns(plan: _Plan) -> tuple[Cube, list[tuple[str, Cube, Cube]]]:
    """The release's cube, and each pattern it needs: (stored key, cube to protect, prices)."""
    cube = _year_cube(plan.year, plan.closed, plan.cells)
    if not plan.layers:
        return cube, [(plan.version, cube, cube)]
    needed = []
    for j, layer in enumerate(plan.layers):
        upto = (
            cube
            if j == len(plan.layers) - 1
            else _year_cube(
                plan.year,
                layer.closed,
                released(earlier.cells for earlier in plan.layers[: j + 1]).items(),
            )
        )
        known_empty = [p for p in KNOWN_EMPTY if p["destination"] in upto.axes[2].codes]
        needed.append(
            (f"{layer.version}#{j}", layer_cube(layer.cells, upto, known_empty=known_empty), upto)
        )
    return cube, needed


def protected_year(
    session: Session, *, year: int, k: int, now: datetime, compute: bool = False
) -> tuple[ProtectedCube, str]:
    """The year's protected cube for the months closed at `now` and its data version.

    Without `compute`, a pattern nobody has computed yet is requested (a row the worker picks
    up) and `ProtectionPending` is raised: web requests only ever read patterns.
    """
    protected, plan = _protected_plan(session, year=year, k=k, now=now, compute=compute)
    return protected, plan.version


def _protected_plan(
    session: Session, *, year: int, k: int, now: datetime, compute: bool = False
) -> tuple[ProtectedCube, _Plan]:
    cells, closed = _year_cells(session, year=year, now=now)
    cache_key = (f"{year}:{closed}:{fingerprint(cells)}", k, _ledger_heads(session, year))
    found = PROTECTED.get(cache_key)
    if found is not None:
        return found
    with PROTECTED.computing:  # concurrent requests of one worker wait for one computation
        found = PROTECTED.get(cache_key)
        if found is not None:
            return found
        plan = _plan(session, year=year, now=now)
        cube, needed = _patterns(plan)
        patterns: list[ProtectedCube] = []
        missing = []
        for key, layer, prices in needed:
            protected = _stored_protection(session, layer, version=key, k=k)
            if protected is None and compute:
                protected = _method(session, key)(layer, k=k, prices=prices.values)
                _store_protection(session, protected, version=key, now=now)
            if protected is None:
                missing.append(key)
            else:
                patterns.append(protected)
        if missing:
            for key in missing:
                _request_protection(session, version=key, k=k, now=now)
            raise ProtectionPending(
                f"the suppression pattern of {year} (data version {plan.version}, k={k}) is "
                f"being computed; ask again in {RETRY_AFTER_SECONDS} seconds",
                data_version=plan.version,
                k=k,
                retry_after=RETRY_AFTER_SECONDS,
            )
        release = patterns[0] if not plan.layers else combine(cube, patterns)
        PROTECTED.put(cache_key, (release, plan))
    return release, plan


def _record_release(session: Session, plan: _Plan, protected: ProtectedCube, now: datetime) -> None:
    """Enter what a release published into the year's ledger, before it is served."""
    if plan.layers and not plan.new:
        return
    layer = plan.layers[-1] if plan.layers else _Layer(plan.version, plan.closed, plan.cells)
    seq = len(plan.layers) - 1 if plan.layers else 0
    table = cast(Table, SurveillanceLayer.__table__)
    cells = json.dumps([[list(key), [v.get(m, 0) for m in MEASURES]] for key, v in layer.cells])
    session.execute(
        dialect_insert(session)(table)
        .values(
            year=plan.year,
            seq=seq,
            data_version=layer.version,
            closed_months=layer.closed,
            cells=zlib.compress(cells.encode()),
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    entered = session.execute(
        select(table.c.data_version).where(table.c.year == plan.year, table.c.seq == seq)
    ).scalar_one()
    if entered != layer.version:  # another release of another version came first
        PROTECTED.clear()
        raise ProtectionPending(
            f"the release ledger of {plan.year} has just moved on; ask again in "
            f"{RETRY_AFTER_SECONDS} seconds",
            data_version=plan.version,
            k=protected.k,
            retry_after=RETRY_AFTER_SECONDS,
        )
    if not plan.layers:  # the version's own patterns (at every k) are its first layer's
        protections = cast(Table, SurveillanceProtection.__table__)
        rows = session.execute(
            select(protections.c.k, protections.c.cells, protections.c.status).where(
                protections.c.data_version == plan.version, protections.c.cells != _REQUESTED
            )
        ).all()
        for k, size, status in rows:
            session.execute(
                dialect_insert(session)(protections)
                .values(
                    data_version=f"{plan.version}#0", k=k, cells=size, status=status, created_at=now
                )
                .on_conflict_do_nothing()
            )
        session.execute(
            delete(SurveillanceProtection).where(
                SurveillanceProtection.data_version == plan.version
            )
        )
    session.expire_all()


@dataclass(frozen=True)
class Computed:
    """The patterns computed for one year and threshold (none when all were stored)."""

    year: int
    k: int
    version: str
    seconds: float
    patterns: int = 0


def protect_outstanding(
    db: Database, *, now: datetime, ks: Sequence[int] = (DEFAULT_K,)
) -> list[Computed]:
    """Compute every pattern that is missing now, storing each: the worker's one pass.

    Missing means: the current data version of last year and this year (of the months closed
    at `now`) at each threshold in `ks`, and every threshold a request asked for since.
    Each is computed as `protect_year` does, with no write transaction open.
    """
    last = closed_through(now).year
    table = cast(Table, SurveillanceProtection.__table__)
    with db.reading() as reader:
        asked = {
            (int(version[:4]), int(k))
            for version, k in reader.session.execute(
                select(table.c.data_version, table.c.k).where(table.c.cells == _REQUESTED)
            )
        }
        # a year without any count is protected (instantly) only when somebody asks for it
        years = [year for year in (last - 1, last) if counts(reader.session, year=year)]
    standing = {(year, k) for year in years for k in ks}
    # the thresholds kept ready first: what any request asks for cannot hold them up
    extra = {(y, k) for y, k in asked if y <= last} - standing
    done = []
    for year, k in sorted(standing) + sorted(extra):
        computed = protect_year(db, year=year, k=k, now=now)
        if computed.patterns:
            done.append(computed)
    return done


def protect_year(db: Database, *, year: int, k: int, now: datetime) -> Computed:
    """Compute and store the patterns one year's current release needs at k (worker, CLI).

    The counts are read and the pattern computed in read-only transactions; only storing it
    takes a short write. On SQLite a computation of a minute therefore never holds the one
    write lock that every audited request needs.
    """
    import time

    started = time.perf_counter()
    with db.reading() as reader:
        plan = _plan(reader.session, year=year, now=now)
        _cube, needed = _patterns(plan)
        missing = [
            (key, layer, prices, _method(reader.session, key))
            for key, layer, prices in needed
            if not _has_pattern(reader.session, key, k)
        ]
    for key, layer, prices, method in missing:
        protected = method(layer, k=k, prices=prices.values)  # no transaction is open
        with db.unit_of_work() as uow:
            if not _has_pattern(uow.session, key, k):
                _store_protection(uow.session, protected, version=key, now=now)
                uow.commit()
    return Computed(year, k, plan.version, time.perf_counter() - started, len(missing))


def _has_pattern(session: Session, version: str, k: int) -> bool:
    row = session.get(SurveillanceProtection, (version, k))
    return row is not None and row.cells != _REQUESTED


def _request_protection(session: Session, *, version: str, k: int, now: datetime) -> None:
    """Leave a request for a pattern (an empty row); one already there is kept."""
    table = cast(Table, SurveillanceProtection.__table__)
    session.execute(
        dialect_insert(session)(table)
        .values(data_version=version, k=k, cells=_REQUESTED, status=b"", created_at=now)
        .on_conflict_do_nothing()
    )


def _method(session: Session, version: str) -> Callable[..., ProtectedCube]:
    """How a pattern of these counts is computed: method 1.2, or 1.1 where a pattern of the same
    counts at another k was (`_legacy_siblings`)."""
    return protect_greedy if _legacy_siblings(session, version) else protect


def _legacy_siblings(session: Session, version: str) -> bool:
    """Whether a pattern of the same counts at another k was computed by method 1.1.

    A new threshold is then computed by 1.1 too, so that the patterns stay nested (a cell
    withheld at a lower k is withheld at every higher one); patterns stored by 1.2 end with
    `_METHOD_1_2`, those stored before carry no mark.
    """
    rows = session.execute(
        select(SurveillanceProtection.status).where(
            SurveillanceProtection.data_version == version,
            SurveillanceProtection.cells != _REQUESTED,
        )
    ).scalars()
    return any(not zlib.decompress(status).endswith(_METHOD_1_2) for status in rows)


def _stored_protection(
    session: Session, cube: Cube, *, version: str, k: int
) -> ProtectedCube | None:
    """The pattern another worker or an earlier extract computed for the same counts."""
    row = session.get(SurveillanceProtection, (version, k))
    if row is None or row.cells != cube.size:
        return None
    packed = zlib.decompress(row.status)
    size = cube.size * len(MEASURES)
    if len(packed) == size + len(_METHOD_1_2) and packed.endswith(_METHOD_1_2):
        packed = packed[:size]
    if len(packed) != size:
        return None
    status = {m: packed[i * cube.size : (i + 1) * cube.size] for i, m in enumerate(MEASURES)}
    return ProtectedCube(cube=cube, k=k, status=status, witnesses=())


def _store_protection(
    session: Session, protected: ProtectedCube, *, version: str, now: datetime
) -> None:
    """Keep a computed pattern in place of its request; the same version gives the same one."""
    cube = protected.cube
    values = {
        "data_version": version,
        "k": protected.k,
        "cells": cube.size,
        "status": zlib.compress(
            b"".join(bytes(protected.status[m]) for m in MEASURES) + _METHOD_1_2
        ),
        "created_at": now,
    }
    # patterns of earlier versions of the year are never served again; those of the layers of
    # the year's release ledger (`version#layer`) are, by every later release
    session.execute(
        delete(SurveillanceProtection).where(
            SurveillanceProtection.data_version.startswith(f"{cube.year}:"),
            SurveillanceProtection.data_version != version,
            ~SurveillanceProtection.data_version.contains("#"),
        )
    )
    table = cast(Table, SurveillanceProtection.__table__)
    statement = dialect_insert(session)(table).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["data_version", "k"],
            set_={c: statement.excluded[c] for c in ("cells", "status", "created_at")},
        )
    )
    session.expire_all()


def _covering(protected: ProtectedCube, where: Mapping[str, str]) -> ProtectedCube:
    """The year's cube, or, when nobody of the scope was counted in it, an all-zero one.

    Zeros for a country the cube has no category for are safe to publish beside it: adding a
    category whose counts are all zero changes no total, so every witness still holds.
    """
    cube = protected.cube
    if all(code in cube.axes[DIMENSIONS.index(d)].codes for d, code in where.items()):
        return protected
    empty = build_cube(
        [],
        year=cube.year,
        closed_months=cube.closed_months,
        categories={d: [code] for d, code in where.items()},
    )
    return protect(empty, k=protected.k)


def _scope(principal: Principal, query: ExtractQuery) -> dict[str, str]:
    if query.scope not in SCOPES:
        raise BadRequest(f"scope is one of {', '.join(SCOPES)}, not {query.scope!r}")
    if principal.role == "admin":
        return {query.scope: query.country} if query.country else {}
    if query.country not in (None, principal.country):
        raise Forbidden(
            f"a ministry of {principal.country} sees its own country only, not {query.country}"
        )
    if principal.country is None:
        raise Forbidden("the ministry client has no country")
    return {query.scope: principal.country}


def _request(query: ExtractQuery, where: dict[str, str]) -> tuple[ExtractRequest, list[str]]:
    """The request in our codes, and a warning for each deprecated measure code it used."""
    try:
        measures, deprecated = read_measures(query.measures)
        request = ExtractRequest(
            granularity=Granularity(query.granularity),
            first=query.first,
            last=query.last,
            grouping=tuple(query.grouping),
            measures=measures,
            k=query.k,
            rounding=query.rounding,
            where=where,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return request, deprecation_warnings(deprecated)


def _render(
    table: ProtectedTable, query: ExtractQuery, now: datetime, warnings: Sequence[str]
) -> bytes:
    if query.format == "csv":
        return formats.csv_text(table).encode()
    if query.format == "json":
        document = formats.json_document(table, warnings=warnings)
        return json.dumps(document, separators=(",", ":")).encode()
    if query.format == "fhir":
        bundle = formats.measure_report_bundle(table, generated=now)
        return json.dumps(bundle, separators=(",", ":")).encode()
    country = next(iter(table.request.where.values()), "ALL")
    target = formats.Dhis2Target(org_unit=query.org_unit or country)
    if query.format == "dhis2":
        return json.dumps(formats.dhis2_data_value_set(table, target)).encode()
    return formats.adx_document(table, target, exported=now).encode()


def build_extract(
    uow: UnitOfWork,
    *,
    principal: Principal,
    query: ExtractQuery,
    now: datetime | None = None,
) -> Release:
    """A protected extract in the asked format, signed by the registry; the download is audited."""
    keystore = uow.keystore
    now = now or utcnow()
    authorize(principal, "surveillance.read")  # the role first: then whose country
    where = _scope(principal, query)
    authorize(principal, "surveillance.read", countries=tuple(where.values()))
    if query.format not in FORMATS:
        raise BadRequest(f"format is one of {', '.join(FORMATS)}, not {query.format!r}")
    unknown = [d for d in query.grouping if d not in FLAT_DIMENSIONS]
    if unknown:
        raise BadRequest(f"group by {', '.join(FLAT_DIMENSIONS)}; not {', '.join(unknown)}")
    request, warnings = _request(query, where)
    try:
        periods = request.periods
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if len(periods) > 120:
        raise BadRequest("an extract covers at most 120 periods")
    last_closed = closed_through(now)
    for period in periods:  # before any pattern is asked for: an open period never gets one
        if (period.year, period.months[-1]) > (last_closed.year, last_closed.index):
            raise BadRequest(f"{period.label} is not closed yet")
    years: dict[int, ProtectedCube] = {}
    versions = []
    plans = []
    for year in sorted({p.year for p in periods}):
        try:
            protected, plan = _protected_plan(uow.session, year=year, k=request.k, now=now)
        except ProtectionPending:
            uow.commit()  # keep the request for the worker; nothing was released
            raise
        years[year] = _covering(protected, where)
        versions.append(plan.version)
        plans.append((plan, protected))
    try:
        table = extract(years, request)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    for plan, protected in plans:  # every release is a constraint on later ones
        _record_release(uow.session, plan, protected, now)
    body = _render(table, query, now, warnings)
    version = ",".join(versions)
    key = keystore.active("document")
    signature = jws.sign_detached(
        body,
        key.private_key,
        kid=key.kid,
        headers={
            "typ": "JOSE",
            "cty": FORMATS[query.format].split(";")[0],
            "disclosure": dict(table.method),
            "data_version": version,
            "iat": int(now.timestamp()),
        },
    )
    # the release is public in the transparency log: which data version, and a digest of the
    # cells as published (the body the ministry received), never the cells themselves
    ministry = principal.country or principal.actor_id
    uow.publish(SurveillanceReleased(ministry, version, sha256_hex(body)))
    audit(
        uow.session,
        actor=principal,
        action="surveillance.extract",
        object_type="SurveillanceExtract",
        detail={
            "format": query.format,
            "granularity": query.granularity,
            "first": query.first,
            "last": query.last,
            "grouping": list(query.grouping),
            "where": where,
            "k": request.k,
            "data_version": version,
        },
        at=now,
    )
    scope = "-".join(where.values()) or "all"
    filename = f"surveillance-{scope}-{query.first}-{query.last}.{EXTENSIONS[query.format]}".lower()
    return Release(
        body=body,
        media_type=FORMATS[query.format],
        signature=signature,
        method=table.method,
        filename=filename,
        version=version,
        warnings=tuple(warnings),
    )


# --- DHIS2 metadata -------------------------------------------------------------------------

_UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")


def dhis2_metadata(
    session: Session, *, org_unit_id: str | None = None, countries: Sequence[str] = ()
) -> dict[str, Any]:
    """The DHIS2 metadata for every value the dhis2 and adx extracts can carry.

    Origins and destinations are those counted in any year, and `countries` (ISO alpha-2)
    beside them: a country that appears later needs its options, so export and import again
    (the UIDs do not change, so the import updates what is there).
    """
    if org_unit_id is not None and not _UID.match(org_unit_id):
        raise BadRequest(
            f"not a DHIS2 UID (11 letters and digits, a letter first): {org_unit_id!r}"
        )
    bad = [c for c in countries if not re.fullmatch(r"[A-Z]{2}", c)]
    if bad:
        raise BadRequest(f"countries are ISO 3166-1 alpha-2 codes, not {', '.join(bad)}")
    table = cast(Table, SurveillanceCount.__table__)
    origins = set(session.scalars(select(table.c.origin).distinct()))
    destinations = set(session.scalars(select(table.c.destination).distinct()))
    request = dhis2.MetadataRequest(
        origins=sorted(origins | set(countries)),
        destinations=sorted(destinations | set(countries) | {NO_DESTINATION}),
        org_unit_id=org_unit_id,
    )
    try:
        return dhis2.metadata(request)
    except ValueError as exc:
        raise BadRequest(f"{exc}: no examination is counted yet; name --country") from exc


# -- subscriptions (registry/subscriptions.py) ------------------------------------------------
# Counts move in the same transaction as the version that changes them.
def on_version_stored(uow: UnitOfWork, event: VersionStored) -> None:
    """Add the new current version's tally (an amendment keeps its completed referrals)."""
    completed = (
        completed_programme_referrals(uow.session, event.examination.id)
        if event.replaces is not None
        else 0  # a first version's referrals were only just requested
    )
    tally = tally_of(
        event.record, clinic_country=event.clinic.country, referrals_completed=completed
    )
    count(uow.session, cipher=uow.cipher, version_id=event.version.id, tally=tally, new=True)


def on_version_retired(uow: UnitOfWork, event: VersionRetired) -> None:
    """Take the retired version's tally back out, exactly as it was added."""
    uncount(uow.session, cipher=uow.cipher, version_id=event.version.id)


def on_referrals_completed(uow: UnitOfWork, event: ReferralsCompleted) -> None:
    """Move the examination's current version to its number of completed referrals."""
    examination = uow.session.get(Examination, event.examination_id)
    if examination is None or examination.status == "entered-in-error":
        return
    set_referrals_completed(
        uow.session,
        cipher=uow.cipher,
        version_id=examination.current.id,
        completed=completed_programme_referrals(uow.session, examination.id),
    )

"""Fixtures: one app per database for the run, each test in a transaction rolled back after it.

Tests run on SQLite; tests marked ``postgres`` run on PostgreSQL too (when reachable).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

from registry import create_app
from registry.db import Database
from registry.extensions import limiter
from registry.schema import metadata, upgrade
from registry.web import RegistryContext
from tests import any_day
from tests.browser import camera_feed, chromium
from tests.certificates.builders import load_rulesets
from tests.support import BASE_URL, World, throwaway_postgres

pytest_plugins = ["tests.privacy_watch"]

# REGISTRY_TEST_DAYS_AHEAD=730 runs the tests with the clock that many days ahead (ticking from
# there): no test may depend on the day it runs (tests/test_any_day.py runs a slice this way).
DAYS_AHEAD = any_day.DAYS_AHEAD


def pytest_configure(config: pytest.Config) -> None:
    days = os.environ.get(DAYS_AHEAD)
    if days:
        import time_machine

        ahead = datetime.now(UTC) + timedelta(days=int(days))
        traveller = time_machine.travel(ahead, tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that includes the two-years-ahead slice starts it now, beside the rest of the run:
    it is a pytest of its own, so it takes the other core instead of adding its ~20 s."""
    config = session.config
    if config.option.collectonly or os.environ.get(DAYS_AHEAD):
        return
    if any(item.nodeid == any_day.TEST for item in session.items):
        folder = Path(tempfile.mkdtemp(prefix="registry-any-day-"))
        run = any_day.SliceRun(folder)
        config.stash[any_day.SLICE_RUN] = run
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        config.add_cleanup(run.stop)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    days = os.environ.get(DAYS_AHEAD)
    if days:
        today = datetime.now(UTC).date()
        terminalreporter.write_line(f"the clock ran {days} days ahead: today was {today}")


DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEEP_TABLES = {"jurisdictions", "alembic_version"}
# set to 1 to run every database test on PostgreSQL too, not only those marked ``postgres``
EVERY_TEST_ON_POSTGRES = "REGISTRY_TEST_EVERY_TEST_ON_POSTGRES"


def _postgres_url() -> tuple[str | None, str]:
    """A fresh test database on the PostgreSQL server, or None with the reason it is absent."""
    base = os.environ.get("REGISTRY_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        admin = create_engine(
            base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as connection:
            name = f"registry_test_{os.getpid()}"
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # any failure to reach the server means: skip the PostgreSQL half
        return None, f"PostgreSQL not reachable at {make_url(base).render_as_string()}: {exc}"
    return make_url(base).set(database=name).render_as_string(hide_password=False), ""


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url, reason = _postgres_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL half: {reason}")
        pytest.skip(reason)
    upgrade(url)
    yield url
    admin = create_engine(
        os.environ.get("REGISTRY_TEST_POSTGRES_URL", DEFAULT_PG), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    """Another database of its own on the test server (for programs run outside the app fixture:
    the registry command, gunicorn), dropped afterwards."""
    server = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    with throwaway_postgres(server, f"registry_fresh_{os.getpid()}") as url:
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that use the database run on SQLite; those marked ``postgres`` on PostgreSQL too."""
    if "database_url" not in metafunc.fixturenames:
        return
    backends = ["sqlite"]
    if metafunc.definition.get_closest_marker("postgres") or os.environ.get(EVERY_TEST_ON_POSTGRES):
        backends.append("postgresql")
    metafunc.parametrize("database_url", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


def _empty(app: Flask) -> None:
    ctx: RegistryContext = app.extensions["registry"]
    tables = [t for t in reversed(metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with ctx.db.engine.begin() as connection:
        if ctx.db.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


def _record_keys(app: Flask) -> None:
    """What `registry init` does after creating the keys: the database records them."""
    from registry.crypto.rotation import record_key_files
    from tests.support import OPERATOR

    ctx: RegistryContext = app.extensions["registry"]
    with ctx.db.unit_of_work() as uow:
        record_key_files(uow, actor=OPERATOR)
        uow.commit()


@contextmanager
def registry_app(database_url: str, keys_dir: Path, **settings: Any) -> Iterator[Flask]:
    """A registry app of its own for tests, with settings overridden, on an emptied database.

    What it commits is emptied again afterwards, so the next test starts from nothing."""
    app = create_app(
        {
            "database_url": database_url,
            "keys_dir": keys_dir,
            "base_url": BASE_URL,
            # published documents answer each test's own data at once (a test sets it to check
            # the interval itself)
            "published_recheck_seconds": 0,
            **settings,
        },
        create_keys=True,
    )
    app.config["TESTING"] = True
    _empty(app)
    _record_keys(app)
    try:
        yield app
    finally:
        try:
            _empty(app)
        finally:
            app.extensions["registry"].db.engine.dispose()


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """Everything the app does inside runs in one transaction that is rolled back at the end.

    The app's sessions join an outer transaction on one connection; each unit of work's commit
    releases a savepoint instead of committing, and a unit of work that fails rolls back to its
    savepoint, as it would have rolled back its own transaction."""
    db: Database = app.extensions["registry"].db
    connection = db.engine.connect()
    outer = connection.begin()
    saved = db.session_factory, db.read_session_factory
    joined = sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    db.session_factory = db.read_session_factory = joined

    @contextmanager
    def joined_connection() -> Iterator[Connection]:
        # what commits by itself there commits into a savepoint here
        with connection.begin_nested():
            yield connection

    db.autocommit_connection = joined_connection  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.session_factory, db.read_session_factory = saved
        del db.autocommit_connection
        # what was built from data now rolled back is not what the next test's data shows
        db.memo.clear()
        outer.rollback()
        connection.close()


@pytest.fixture(scope="session")
def shared_app(database_url: str, keys_dir: Path) -> Iterator[Flask]:
    """One registry app per database for the whole run (building one costs most of a second)."""
    with registry_app(database_url, keys_dir) as app:
        yield app


@pytest.fixture
def app(shared_app: Flask, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The shared app with the shipped rulesets, its writes rolled back after the test.

    A test marked ``committed`` (other programs or threads must see its writes) commits for real
    and the tables are emptied after it instead."""
    limiter.reset()
    if request.node.get_closest_marker("committed"):
        try:
            load_rulesets(shared_app)
            yield shared_app
        finally:
            _empty(shared_app)
        return
    with rolled_back(shared_app):
        load_rulesets(shared_app)
        yield shared_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> RegistryContext:
    registry: RegistryContext = app.extensions["registry"]
    return registry


@pytest.fixture
def world(app: Flask) -> World:
    return World(app)


# -- the browser tests: one Chromium and one live registry for the run ----------------------
@pytest.fixture(scope="session")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Chromium's fake camera plays; a camera test writes its QR code here first."""
    return camera_feed(None, tmp_path_factory.mktemp("camera") / "feed.y4m")


@pytest.fixture(scope="session")
def browser(camera_file: Path) -> Iterator[Any]:
    """Headless Chromium, started once; each test opens contexts of its own and closes them."""
    with chromium(camera_file) as launched:
        yield launched


@pytest.fixture(scope="session")
def served_app(sqlite_url: str, keys_dir: Path) -> Iterator[tuple[Flask, str]]:
    """A registry served over HTTP on a free loopback port, and its address.

    The browser tests run on SQLite only (the API tests cover both databases); the pages ask
    for tokens and verdicts faster than any person would, so the rate limits stand aside."""
    limits = {"token_rate_limit": "10000 per minute", "verify_rate_limit": "10000 per minute"}
    with registry_app(sqlite_url, keys_dir, **limits) as app:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture
def live_app(served_app: tuple[Flask, str]) -> Iterator[Flask]:
    """The served registry for one test: it starts empty but for its keys, and what the test
    commits (the server's threads must see it) is emptied after it."""
    app = served_app[0]
    limiter.reset()
    try:
        yield app
    finally:
        _empty(app)
        _record_keys(app)
        app.extensions["registry"].db.memo.clear()


@pytest.fixture
def live_server(live_app: Flask, served_app: tuple[Flask, str]) -> str:
    """The address of the served registry."""
    return served_app[1]

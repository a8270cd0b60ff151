"""Fixtures: an app per test on SQLite and (when reachable) PostgreSQL, clients and tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry import create_app
from registry.schema import metadata, upgrade
from registry.web import RegistryContext
from tests.certificates.builders import load_rulesets
from tests.support import BASE_URL, World, throwaway_postgres

pytest_plugins = ["tests.privacy_watch"]

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEEP_TABLES = {"jurisdictions", "alembic_version"}


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


@pytest.fixture(params=["sqlite", "postgresql"])
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


@contextmanager
def registry_app(database_url: str, keys_dir: Path, **settings: Any) -> Iterator[Flask]:
    """A registry app for tests on an emptied database, with settings overridden; disposed after."""
    app = create_app(
        {"database_url": database_url, "keys_dir": keys_dir, "base_url": BASE_URL, **settings},
        create_keys=True,
    )
    app.config["TESTING"] = True
    _empty(app)
    try:
        yield app
    finally:
        app.extensions["registry"].db.engine.dispose()


@pytest.fixture
def app(database_url: str, keys_dir: Path) -> Iterator[Flask]:
    with registry_app(database_url, keys_dir) as app:
        load_rulesets(app)
        yield app


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

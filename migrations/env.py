"""Alembic environment: the registry's metadata, URL from the caller or REGISTRY_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from registry.db import make_engine
from registry.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("REGISTRY_DATABASE_URL")
if not url:
    raise SystemExit("set REGISTRY_DATABASE_URL or pass sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""What every ``registry`` subcommand shares: the app, the operator, errors as exit codes.

A leaf module: registry/cli.py and the features' own commands (surveillance, verification)
import it, and it imports none of them.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask

from registry import create_app
from registry.auth.principal import ROLE_SCOPES, Principal
from registry.errors import DomainError
from registry.web import RegistryContext


def operator() -> Principal:
    """The person at the command line, acting as the registry operator."""
    return Principal(
        client_id=f"cli:{getpass.getuser()}",
        role="admin",
        name="command line operator",
        scopes=ROLE_SCOPES["admin"],
    )


@contextmanager
def app_context(*, create_keys: bool = False) -> Iterator[tuple[Flask, RegistryContext]]:
    app = create_app(create_keys=create_keys)
    ctx: RegistryContext = app.extensions["registry"]
    try:
        with app.app_context():
            yield app, ctx
    finally:
        ctx.db.engine.dispose()


def run_service(action: Callable[[], Any]) -> Any:
    """Run a service call; a domain error becomes a one-line message and exit status 2."""
    try:
        return action()
    except DomainError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)


def parse_when(text: str | None) -> datetime | None:
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)

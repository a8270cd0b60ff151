"""Counting the SQL statements a request sends: the fewest queries per request, held by tests."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)
_FUNCTION = re.compile(r"^SELECT\s+(\w+)\(", re.IGNORECASE)
_PARENTHESES = re.compile(r"\([^()]*\)")


def _top_level(statement: str) -> str:
    """The statement without anything in parentheses (subqueries, column lists, values)."""
    while True:
        shorter = _PARENTHESES.sub("", statement)
        if shorter == statement:
            return statement
        statement = shorter


class Statements(list[str]):
    """The SQL sent to the database, in order (transaction control included)."""

    # per statement, whether its connection committed it by itself (psycopg's autocommit: no
    # BEGIN before it and no COMMIT after it, so it costs its own round trip and no other)
    autocommitted: list[bool]

    def control(self) -> list[str]:
        """BEGIN, SAVEPOINT, RELEASE and ROLLBACK statements."""
        return [s for s in self if s.upper().startswith(CONTROL)]

    def tally(self) -> Counter[str]:
        """Every other statement as ``VERB table`` (``SELECT f()`` for a function call)."""
        tally: Counter[str] = Counter()
        for statement in self:
            if statement.upper().startswith(CONTROL):
                continue
            verb = statement.split(None, 1)[0].upper()
            function = _FUNCTION.match(statement)
            table = _TABLE.search(_top_level(statement))
            if function:
                tally[f"SELECT {function.group(1)}()"] += 1
            else:
                tally[f"{verb} {table.group(1) if table else '?'}"] += 1
        return tally


@contextmanager
def recorded(engine: Engine) -> Iterator[Statements]:
    """Every statement the engine's connections execute while the block runs."""
    statements = Statements()
    statements.autocommitted = []

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))
        dbapi = conn.connection.dbapi_connection
        statements.autocommitted.append(bool(getattr(dbapi, "autocommit", False)))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)

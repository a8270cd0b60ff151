"""A pytest plugin: every log line the suite produces is kept, and at the end none may name a
test person (family or given name, patronymic, birth date, document number).

The persons are the ones the registry itself saw: every ``PersonData`` built while parsing a
submitted bundle is recorded, together with the persons of the profile's example bundles. The
log text is what the registry's JSON handler formatted, plus every captured section pytest
keeps for a test (stderr, stdout, log records of any logger), so a test added later is covered
without doing anything.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "fhir_profiles" / "examples"
# shorter values (a three-letter given name) would match ordinary words in a log line
MIN_LENGTH = 4


@dataclass
class PrivacyWatch:
    """The persons seen and the log text written during the session."""

    persons: set[str] = field(default_factory=set)
    chunks: list[str] = field(default_factory=list)
    lines: int = 0

    def remember(self, values: Iterable[str | None]) -> None:
        self.persons.update(v for v in values if v and len(v.strip()) >= MIN_LENGTH)

    def keep(self, text: str) -> None:
        if text:
            self.chunks.append(text)
            self.lines += text.count("\n") or 1

    def leaks(self) -> list[str]:
        """Each person value found in the kept log text, with the line it appeared in."""
        return leaks("".join(self.chunks), self.persons)


def spellings(value: str) -> set[str]:
    """The value as written and as a JSON renderer with ASCII escapes writes it."""
    return {value, json.dumps(value)[1:-1]}


def leaks(text: str, persons: Iterable[str]) -> list[str]:
    """Every person value that occurs as a whole word in ``text``, with its line."""
    found = []
    for value in sorted(set(persons)):
        for spelling in spellings(value):
            pattern = re.compile(rf"(?<![\w\\]){re.escape(spelling)}(?!\w)")
            match = pattern.search(text)
            if match:
                start = text.rfind("\n", 0, match.start()) + 1
                end = text.find("\n", match.end())
                line = text[start : end if end != -1 else len(text)]
                found.append(f"{value!r} in: {line[:300]}")
                break
    return found


def plausible_name(value: str | None) -> bool:
    """A name as people write one: capitalised. Generated test input such as ``final`` (a
    mutated bundle's family name) would otherwise match the words of any log line."""
    return bool(value) and value[0].isupper() and any(c.isalpha() for c in value[1:])


def plausible_document(value: str | None) -> bool:
    """A document number: at least six characters, with a digit."""
    return bool(value) and len(value) >= 6 and any(c.isdigit() for c in value)


def person_values(person: Any) -> list[str | None]:
    """Names, birth date and document numbers of a ``PersonData``."""
    names = [*person.family_names, *person.given_names, person.patronymic]
    values: list[str | None] = [n for n in names if plausible_name(n)]
    values.append(person.birth_date.isoformat())
    values += [d.number for d in person.documents if plausible_document(d.number)]
    return values


def example_persons() -> list[str | None]:
    """Names, birth dates and documents of the Patients in the profile's example bundles."""
    values: list[str | None] = []
    for path in EXAMPLES.rglob("*.json"):
        try:
            bundle = json.loads(path.read_text("utf-8"))
        except ValueError:
            continue  # the invalid examples include malformed JSON on purpose
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
                continue
            for name in resource.get("name") or []:
                values.append(name.get("family"))
                values += name.get("given") or []
                values += [e.get("valueString") for e in name.get("extension") or []]
            values.append(resource.get("birthDate"))
            values += [i.get("value") for i in resource.get("identifier") or []]
    return [v for v in values if isinstance(v, str)]


WATCH = PrivacyWatch()


def _record_persons() -> None:
    from registry.fhir.record import PersonData

    original = PersonData.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        WATCH.remember(person_values(self))

    PersonData.__init__ = init  # type: ignore[method-assign]


def _tee_registry_logs() -> None:
    from registry import logs

    original = logs._StderrHandler.format

    def format(self: logging.Handler, record: logging.LogRecord) -> str:
        line = original(self, record)
        WATCH.keep(line + "\n")
        return line

    logs._StderrHandler.format = format  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    WATCH.remember(example_persons())
    _record_persons()
    _tee_registry_logs()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for title, content in report.sections:
        if title.startswith("Captured"):
            WATCH.keep(content)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    found = WATCH.leaks()
    terminalreporter.write_sep("-", "personal data in logs")
    terminalreporter.write_line(
        f"{WATCH.lines} log lines checked against {len(WATCH.persons)} values of test persons: "
        + (f"{len(found)} found" if found else "none found")
    )
    for leak in found:
        terminalreporter.write_line(f"  {leak}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if WATCH.leaks() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

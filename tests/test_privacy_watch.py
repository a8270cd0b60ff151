"""The log watch itself: it finds a person's values however the JSON renderer wrote them."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

from registry.examinations.examples import examination_bundle
from registry.logs import get_logger
from tests.privacy_watch import WATCH, example_persons, leaks, person_values


def test_a_name_is_found_as_written_and_as_an_ascii_escaped_json_string() -> None:
    line = json.dumps({"event": "oops", "who": "Каримов"}) + "\n"
    assert line.count("\\u") == 7
    assert leaks(line, {"Каримов", "Rustam"}) == [f"'Каримов' in: {line.strip()}"]
    assert leaks('{"who": "Rustam"}', {"Rustam"}) == ['\'Rustam\' in: {"who": "Rustam"}']


def test_a_value_inside_a_longer_word_is_not_a_leak() -> None:
    assert leaks('{"event": "Karimovsky 19910314"}', {"Karimov", "1991031"}) == []


def test_the_example_persons_are_watched() -> None:
    values = set(example_persons())
    assert {"Karimov", "Rustam", "Saidovich", "1991-03-14", "401234567"} <= values
    patient = next(
        e["resource"]
        for e in examination_bundle()["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["birthDate"] in values


def test_every_registry_log_line_reaches_the_watch(app) -> None:
    before = WATCH.lines
    get_logger("registry.test").warning("watched", request_id="r-1")
    assert WATCH.lines == before + 1
    assert '"event": "watched"' in WATCH.chunks[-1]


def test_generated_words_that_are_no_name_are_not_watched() -> None:
    document = SimpleNamespace(number="401234567")
    short = SimpleNamespace(number="12")
    person = SimpleNamespace(
        family_names=["Karimov", "final"],
        given_names=["Rustam", "Ž"],
        patronymic=None,
        birth_date=date(1991, 3, 14),
        documents=[document, short],
    )
    assert person_values(person) == ["Karimov", "Rustam", "1991-03-14", "401234567"]

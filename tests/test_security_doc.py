"""docs/security.md maps every threat to a test, and every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(?P<file>[\w/]+\.py)(?:::(?P<test>\w+))?`")


def _threat_rows() -> list[str]:
    """Table rows of the threat sections (not the assets' table), headers excluded."""
    text = DOC.read_text("utf-8")
    section = text.split("## Threats, mitigations and proofs", 1)[1].split("## What was tried", 1)[
        0
    ]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [r for r in rows if not r.startswith(("| attack |", "| fault |"))]


def test_every_threat_names_a_proof() -> None:
    rows = _threat_rows()
    assert len(rows) >= 30
    for row in rows:
        proof = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert REFERENCE.search(proof), row


def test_every_named_test_exists() -> None:
    named = 0
    for row in _threat_rows():
        file = None
        # `file.py::test` names a test; a following `::test` is another one in the same file
        for match in re.finditer(r"`(?P<file>[\w/]+\.py)?(?:::(?P<test>\w+))?`", row):
            if match["file"]:
                file = match["file"]
                file = file if file.startswith(("tests/", "bench/")) else f"tests/{file}"
                assert (ROOT / file).is_file(), match[0]
            if match["test"]:
                assert file is not None, row
                assert f"def {match['test']}(" in (ROOT / file).read_text("utf-8"), match[0]
                named += 1
    assert named >= 60

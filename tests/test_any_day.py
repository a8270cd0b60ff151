"""No test depends on the day it runs: a slice of the suite passes with the clock two years ahead.

The slice covers what dates drive: submission and its date checks, rulesets and certificate
validity, verification, tokens, surveillance periods, referrals and the README walk-through.
The clock ticks from two years ahead (tests/conftest.py, REGISTRY_TEST_DAYS_AHEAD); browsers and
servers in other processes keep the real clock, so they are not in the slice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import DAYS_AHEAD

REPOSITORY = Path(__file__).resolve().parents[1]
SLICE = [
    "tests/test_readme_walkthrough.py",
    "tests/examinations/test_submission.py",
    "tests/certificates/test_issuance.py",
    "tests/certificates/test_rulesets.py",
    "tests/verification/test_verify_api.py",
    "tests/auth/test_tokens.py",
    "tests/surveillance/test_api.py",
    "tests/referrals/test_referrals.py",
    "tests/fhir/test_fhir_examples.py",
]


@pytest.mark.skipif(bool(os.environ.get(DAYS_AHEAD)), reason="already running ahead")
def test_a_slice_of_the_suite_passes_two_years_from_now(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not postgresql",  # the PostgreSQL twins run in the main run
            f"--basetemp={tmp_path / 'ahead'}",
            *SLICE,
        ],
        cwd=REPOSITORY,
        env={**os.environ, DAYS_AHEAD: "730"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    said = re.search(r"the clock ran 730 days ahead: today was (\S+)", result.stdout)
    assert said, result.stdout[-2000:]
    ahead = datetime.now(UTC) + timedelta(days=730)
    assert date.fromisoformat(said.group(1)) in {ahead.date(), (ahead - timedelta(days=1)).date()}

"""No test depends on the day it runs: a slice of the suite passes with the clock two years ahead.

The slice covers what dates drive: submission and its date checks, rulesets and certificate
validity, verification, tokens, surveillance periods, referrals and the README walk-through.
The clock ticks from two years ahead (tests/conftest.py, REGISTRY_TEST_DAYS_AHEAD); browsers and
servers in other processes keep the real clock, so they are not in the slice.

The slice (tests/any_day.py) is a pytest of its own: a run that includes this test starts it
as soon as it is collected (tests/conftest.py), and the test waits for its verdict.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.any_day import SLICE_RUN, SliceRun
from tests.conftest import DAYS_AHEAD


@pytest.mark.skipif(bool(os.environ.get(DAYS_AHEAD)), reason="already running ahead")
def test_a_slice_of_the_suite_passes_two_years_from_now(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    started = request.config.stash.get(SLICE_RUN, None)
    run = started if started is not None else SliceRun(tmp_path)
    code, stdout, stderr = run.result(timeout=600)
    summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    assert code == 0, stdout[-4000:] + stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    said = re.search(r"the clock ran 730 days ahead: today was (\S+)", stdout)
    assert said, stdout[-2000:]
    ahead = datetime.now(UTC) + timedelta(days=730)
    assert date.fromisoformat(said.group(1)) in {ahead.date(), (ahead - timedelta(days=1)).date()}

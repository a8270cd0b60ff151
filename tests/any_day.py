"""The slice of the suite that tests/test_any_day.py runs with the clock two years ahead.

tests/conftest.py starts it as soon as a run that includes that test is collected, so the
slice (a pytest of its own, ~20 s) runs on the second core while the rest of the suite runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAYS_AHEAD = "REGISTRY_TEST_DAYS_AHEAD"  # as tests/conftest.py reads it

REPOSITORY = Path(__file__).resolve().parents[1]
TEST = "tests/test_any_day.py::test_a_slice_of_the_suite_passes_two_years_from_now"
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


class SliceRun:
    """The slice running in a pytest of its own, its output kept in files (no pipe to fill)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._stdout = (folder / "stdout.txt").open("w")
        self._stderr = (folder / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                "not postgresql",  # the PostgreSQL twins run in the main run
                f"--basetemp={folder / 'ahead'}",
                *SLICE,
            ],
            cwd=REPOSITORY,
            env={**os.environ, DAYS_AHEAD: "730"},
            stdout=self._stdout,
            stderr=self._stderr,
            text=True,
        )

    def result(self, timeout: float) -> tuple[int, str, str]:
        """The slice's exit code, standard output and standard error, once it has finished."""
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.stop()
        return code, self._read("stdout.txt"), self._read("stderr.txt")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stdout.close()
        self._stderr.close()

    def _read(self, name: str) -> str:
        return (self.folder / name).read_text()


# the run started when the suite was collected, if it was
SLICE_RUN = pytest.StashKey[SliceRun]()

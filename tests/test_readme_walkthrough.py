"""The README's sign-and-submit walk-through issues certificates, on whatever day it is tried.

`registry example` writes the profile's example dated three days back, `registry sign` signs it
with the clinic's own key, and the submission gets a certificate for every destination.
tests/test_any_day.py runs this again with the clock two years ahead.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from registry.cli import main
from registry.crypto.keys import private_jwk
from tests.support import World

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE = ".venv/bin/registry example -o bundle.json"
SIGN = (
    ".venv/bin/registry sign --key keys/demo/clinic-keys/TJ-DUS-0007.jwk.json "
    "bundle.json -o signed.json"
)


def test_the_readme_walks_through_example_sign_and_submit() -> None:
    text = README.read_text("utf-8")
    assert EXAMPLE in text and SIGN in text
    assert text.index(EXAMPLE) < text.index(SIGN) < text.index('receipt["assessments"]')


def test_the_example_signed_at_the_clinic_gets_a_certificate_for_every_destination(
    world: World, tmp_path: Path
) -> None:
    world.clinic("TJ-DUS-0007")
    kid, key = world.clinic_held_key("TJ-DUS-0007")
    key_file = tmp_path / "TJ-DUS-0007.jwk.json"
    key_file.write_text(json.dumps(private_jwk(key)), "utf-8")
    bundle, signed = tmp_path / "bundle.json", tmp_path / "signed.json"
    runner = CliRunner()

    written = runner.invoke(main, ["example", "-o", str(bundle)])
    assert written.exit_code == 0, written.output
    assert "examination EXAMPLE-" in written.output
    signing = runner.invoke(main, ["sign", "--key", str(key_file), str(bundle), "-o", str(signed)])
    assert signing.exit_code == 0, signing.output
    assert f"signed with key {kid}" in signing.output

    response = world.http.post(
        "/api/v1/examinations",
        data=signed.read_bytes(),
        headers=world.bearer("clinic", clinic_id="TJ-DUS-0007"),
        content_type="application/fhir+json",
    )
    assert response.status_code == 201, response.json
    receipt = response.json
    assert receipt["custodial"] is False and receipt["signing_kid"] == kid
    assessments = {a["destination"]: a for a in receipt["assessments"]}
    assert sorted(assessments) == ["KZ", "RU", "TM"]
    for destination, assessment in assessments.items():
        assert assessment["met"] is True, assessment["reasons"]
        assert assessment["certificate_id"].startswith(f"{destination}-")


def test_each_example_is_a_new_examination_unless_numbered(tmp_path: Path) -> None:
    runner = CliRunner()
    first = json.loads(runner.invoke(main, ["example"]).output)
    second = json.loads(runner.invoke(main, ["example"]).output)
    assert first["identifier"]["value"] != second["identifier"]["value"]
    numbered = runner.invoke(main, ["example", "--number", "2026-7", "--examined-on", "2026-01-05"])
    bundle = json.loads(numbered.output)
    assert bundle["identifier"]["value"] == "2026-7"
    assert "2026-01-05" in json.dumps(bundle)

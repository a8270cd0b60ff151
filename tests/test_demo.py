"""`registry demo`: what it prints is enough to try the registry, and every address opens."""

from __future__ import annotations

import re

import pytest

from registry import demo
from tests.certificates.builders import load_rulesets
from tests.support import OPERATOR, World


def test_the_demo_prints_birth_dates_and_only_addresses_that_open(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_rulesets(world.app)
    # the synthetic surveillance years are the dashboard's business, and slow; not these lines
    monkeypatch.setattr(demo, "load_surveillance_history", lambda ctx: iter(()))
    lines = list(demo.load_demo(world.ctx, principal=OPERATOR))
    base = world.ctx.settings.base_url
    examinations = [line for line in lines if line.startswith("examination ")]
    assert len(examinations) == len(demo.EXAMINATIONS)
    for line in examinations:
        born = re.search(r"born (\d{4}-\d{2}-\d{2})", line)
        assert born, line
        if "certificates none" in line:
            # no certificate, so no holder page: nothing printed that would answer 404
            assert "/h/" not in line, line
            continue
        secret = re.search(r"/h/([A-Za-z0-9_-]+) ", line)
        assert secret, line
        page = world.http.get(f"/h/{secret[1]}?lang=en")
        assert page.status_code == 200, line
        number = re.search(r"certificates ([A-Z]{2}-[0-9A-Z]{4}-[0-9A-Z]{4})", line)
        assert number, line
        # the printed number and birth date check at /verify as printed
        answer = world.http.post(
            "/api/v1/verify", json={"certificate_id": number[1], "birth_date": born[1]}
        ).json
        assert answer["result"] in ("valid", "issuer_suspended"), (line, answer)
        slip = re.search(r"slip (/api/v1/certificates/\S+)\)", line)
        assert slip and world.http.get(slip[1]).status_code == 200, line
        code = re.search(r"recovery code ([0-9A-Z]{4}-[0-9A-Z]{4})", line)
        recovered = world.http.post(
            "/h",
            data={"certificate_id": number[1], "birth_date": born[1], "recovery_code": code[1]},
        )
        assert recovered.status_code == 303
        assert recovered.headers["Location"].startswith(f"/h/{secret[1]}")
    assert any("certificates none" in line for line in examinations)
    assert lines[-1].startswith(f"check a certificate at {base}/verify")
    for line in lines:
        for address in re.findall(rf"{re.escape(base)}(/[^\s;,)]*)", line):
            path = address.split("?")[0]
            assert world.http.get(path).status_code == 200, line

"""Key drills, run as the operators would: through the command line, the API and the verifier.

* Rotating the registry's certificate key twice through the command line while the app runs,
  never restarted: it signs with the new key once its refresh interval has passed, every card
  issued before still verifies.
* A clinic key is stolen: the accreditor marks it compromised as of a time; exactly the
  certificates of examinations it signed (or that were submitted) from then on are revoked,
  the others stay valid; the clinic re-signs those examinations with a new key and amends
  them, and they get new, valid certificates; nothing new signed with the stolen key passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner
from flask import Flask

from registry.certificates import shc
from registry.certificates.models import Certificate
from registry.cli import main
from registry.crypto.keys import PrivateKey
from tests.bundles import body, examination_bundle, signed
from tests.certificates.builders import certified, load_rulesets, stored, submit
from tests.conftest import registry_app
from tests.support import BASE_URL, World
from tests.verification.helpers import BIRTH_DATE, card_of

FHIR = "application/fhir+json"


@pytest.fixture
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # rotation writes new keys: these drills get an app with a keys folder of its own
    with registry_app(database_url, tmp_path_factory.mktemp("drill-keys")) as app:
        load_rulesets(app)
        yield app


_ADDRESSES = itertools.count(1)


def _verify(app: Flask, presented: dict[str, str]) -> dict[str, Any]:
    # each check from an address of its own: the per-address allowance is not under test here
    n = next(_ADDRESSES)
    address = {"REMOTE_ADDR": f"10.9.{n // 250 % 250}.{n % 250 + 1}"}
    response = app.test_client().post("/api/v1/verify", json=presented, environ_base=address)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer: dict[str, Any] = response.json
    return answer


def _rotate(app: Flask, monkeypatch: pytest.MonkeyPatch) -> str:
    settings = app.extensions["registry"].settings
    monkeypatch.setenv("REGISTRY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REGISTRY_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("REGISTRY_BASE_URL", BASE_URL)
    result = CliRunner().invoke(main, ["keys", "rotate", "--purpose", "certificate"])
    assert result.exit_code == 0, result.output
    assert "signs with it within 2 seconds" in result.output
    return result.output.split()[2]  # "certificate key <kid> active; ..."


def test_every_old_card_still_verifies_after_two_rotations_of_the_certificate_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007")
    issued: list[tuple[Certificate, str]] = []
    app = world.app
    refresh = world.ctx.settings.key_refresh_seconds
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        kids = [world.ctx.keystore.active("certificate").kid]
        for round_number in range(3):
            for certificate in certified(submit(world, number=f"ROT-{round_number}")).values():
                assert certificate.kid == kids[-1]
                issued.append((certificate, card_of(world, certificate)))
            if round_number < 2:
                # rotated by the command line (another process); the running app, never
                # restarted, keeps the key it knows until its refresh interval has passed
                kids.append(_rotate(app, monkeypatch))
                assert world.ctx.keystore.active("certificate").kid == kids[-2]
                clock.shift(timedelta(seconds=refresh))
                assert world.ctx.keystore.active("certificate").kid == kids[-1]
    assert len(set(kids)) == 3
    published = {k["kid"] for k in app.test_client().get("/.well-known/jwks.json").json["keys"]}
    assert set(kids) <= published
    trust_list = app.test_client().get("/api/v1/trust-list")
    assert trust_list.status_code == 200
    for kid in kids:
        assert kid in trust_list.get_data(as_text=True)
    for n, (certificate, card) in enumerate(issued):
        assert shc.decode_card(card)[0]["kid"] == kids[n // 3]
        for presented in (
            {"qr": shc.qr_payload(card)},
            {"jws": card},
            {"certificate_id": certificate.id, "birth_date": BIRTH_DATE},
        ):
            answer = _verify(app, presented)
            assert answer["result"] == "valid", (n, presented, answer)
            assert answer["certificate"]["id"] == certificate.id


# -- a stolen clinic key ---------------------------------------------------------------------
def _post(world: World, bundle: dict[str, Any], headers: dict[str, str]) -> Any:
    return world.http.post(
        "/api/v1/examinations", data=body(bundle), headers=headers, content_type=FHIR
    )


def _submitted(
    world: World, number: str, key: PrivateKey, kid: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = _post(world, signed(examination_bundle(number=number), key, kid), headers)
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    receipt: dict[str, Any] = response.json
    assert receipt["signing_kid"] == kid
    return receipt


def _certificate_ids(receipt: dict[str, Any]) -> set[str]:
    return {a["certificate_id"] for a in receipt["assessments"] if a["certificate_id"]}


def _verdict(world: World, certificate_id: str) -> str:
    answer = _verify(world.app, {"certificate_id": certificate_id, "birth_date": BIRTH_DATE})
    result: str = answer["result"]
    return result


def test_a_stolen_clinic_key_revokes_exactly_its_certificates_and_they_are_reissued(
    world: World,
) -> None:
    load_rulesets(world.app)
    world.clinic("TJ-DUS-0007", custody="clinic-held")
    world.clinic("KG-BIS-0001")
    stolen_kid, stolen = world.clinic_held_key("TJ-DUS-0007")
    clinic = world.bearer("clinic", clinic_id="TJ-DUS-0007")
    before = _submitted(world, "DRILL-A", stolen, stolen_kid, clinic)
    since = datetime.now(UTC)
    after = [_submitted(world, f"DRILL-{n}", stolen, stolen_kid, clinic) for n in "BC"]
    elsewhere = certified(
        submit(world, examination_bundle(clinic_id="KG-BIS-0001"), clinic_id="KG-BIS-0001")
    )
    untouched = _certificate_ids(before) | {c.id for c in elsewhere.values()}
    affected = set().union(*(_certificate_ids(r) for r in after))
    assert len(affected) == 6 and len(untouched) == 6

    accreditor = world.bearer("accreditor", country="TJ")
    marked = world.http.post(
        f"/api/v1/clinics/TJ-DUS-0007/keys/{stolen_kid}/status",
        json={
            "status": "compromised",
            "reason": "laptop stolen",
            "effective_at": since.isoformat(),
        },
        headers=accreditor,
    )
    assert marked.status_code == 200, marked.json
    assert {c: _verdict(world, c) for c in affected} == dict.fromkeys(affected, "revoked")
    assert {c: _verdict(world, c) for c in untouched} == dict.fromkeys(untouched, "valid")
    kid = world.ctx.keystore.active("certificate").kid
    crl = world.http.get(f"/.well-known/crl/{kid}.json").json
    assert {rid.partition(".")[0] for rid in crl["rids"]} == {
        stored(world, c).rid for c in affected
    }

    # nothing new passes with the stolen key, even backdated to before the compromise
    thief = _post(
        world, signed(examination_bundle(number="DRILL-X"), stolen, stolen_kid, when=since), clinic
    )
    assert thief.status_code == 422
    assert "compromised" in thief.get_data(as_text=True)

    # the clinic re-signs what it examined with a new key and amends: new certificates
    new_kid, new_key = world.clinic_held_key("TJ-DUS-0007")
    for receipt in after:
        number = "DRILL-B" if receipt is after[0] else "DRILL-C"
        amended = world.http.put(
            f"/api/v1/examinations/{receipt['id']}",
            data=body(signed(examination_bundle(number=number), new_key, new_kid)),
            headers=clinic,
            content_type=FHIR,
        )
        assert amended.status_code == 200, amended.get_data(as_text=True)[:500]
        assert (amended.json["version"], amended.json["signing_kid"]) == (2, new_kid)
        assert amended.json["bundle_sha256"] == receipt["bundle_sha256"]  # the same record
        reissued = _certificate_ids(amended.json)
        assert len(reissued) == 3 and not reissued & affected
        assert {c: _verdict(world, c) for c in reissued} == dict.fromkeys(reissued, "valid")
    assert {c: _verdict(world, c) for c in affected} == dict.fromkeys(affected, "revoked")
    assert {c: _verdict(world, c) for c in untouched} == dict.fromkeys(untouched, "valid")
